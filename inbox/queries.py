"""Read-side lookups for the inbox: the conversation list and the timeline.

The list must stay fast on a large account (100k followers, 1M messages):
keyset pagination on indexed columns, `select_related` for everything a row
shows, unread counts as correlated subqueries on the (conversation, id) index,
and bounded counts for the tab badges. Nothing here issues a query per row.
"""

import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.db import connection
from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from inbox.models import Activity, ReadMarker
from wechat.models import Contact, Conversation, InboundMessage, MediaAsset, OutboundMessage

TABS = ("mine", "unassigned", "all")
STATUSES = tuple(Conversation.Status.values)
SORTS = ("waiting", "closing", "recent")
PAGE_SIZE = 30
# Tab badges show "99+" beyond this; counting further would scan a big queue.
BADGE_CAP = 99
TIMELINE_LIMIT = 200
_OPENID = re.compile(r"[A-Za-z0-9_-]{6,64}")


@dataclass(frozen=True)
class ListParams:
    tab: str = "mine"
    status: str = Conversation.Status.OPEN
    sort: str = "waiting"
    q: str = ""
    cursor: str = ""

    @classmethod
    def from_query(cls, query):
        tab = query.get("tab", "mine")
        status = query.get("status", Conversation.Status.OPEN)
        sort = query.get("sort", "waiting")
        return cls(
            tab=tab if tab in TABS else "mine",
            status=status if status in STATUSES else Conversation.Status.OPEN,
            sort=sort if sort in SORTS else "waiting",
            q=query.get("q", "").strip()[:64],
            cursor=query.get("cursor", "")[:80],
        )

    def as_query(self, **changes):
        values = {"tab": self.tab, "status": self.status, "sort": self.sort, "q": self.q, **changes}
        return {k: v for k, v in values.items() if v}


@dataclass
class Page:
    rows: list
    next_cursor: str


def _read_to(user):
    marker = ReadMarker.objects.filter(user=user, conversation=OuterRef("pk")).values("last_read_inbound_id")[:1]
    return Coalesce(Subquery(marker, output_field=IntegerField()), Value(0))


def _unread_count():
    counted = (
        InboundMessage.objects.filter(conversation=OuterRef("pk"), id__gt=OuterRef("read_to"))
        .order_by()
        .values("conversation")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def base_queryset(*, user, account_ids, params, now):
    qs = Conversation.objects.filter(account_id__in=account_ids)
    if params.tab == "mine":
        qs = qs.filter(assignee=user)
    elif params.tab == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    qs = qs.filter(status=params.status)
    if params.q:
        if _OPENID.fullmatch(params.q) and Contact.objects.filter(account_id__in=account_ids, openid=params.q).exists():
            # An exact OpenID (pasted from a log or a colleague): one index
            # lookup instead of a text scan over every message.
            return qs.filter(contact__openid=params.q)
        qs = qs.filter(_search(params.q))
    return qs


def _search(q):
    return (
        Q(contact__remark__icontains=q)
        | Q(contact__display_name__icontains=q)
        | Q(contact__openid__icontains=q)
        | Exists(InboundMessage.objects.filter(conversation=OuterRef("pk"), content__icontains=q))
        | Exists(OutboundMessage.objects.filter(conversation=OuterRef("pk"), preview__icontains=q))
    )


def conversation_page(*, user, account_ids, params, now, page_size=PAGE_SIZE):
    qs = (
        base_queryset(user=user, account_ids=account_ids, params=params, now=now)
        # Only what a row shows: the account row (secrets, settings) is not needed per row.
        .select_related("contact", "assignee")
        .annotate(read_to=_read_to(user))
        .annotate(unread=_unread_count())
    )
    cursor = _parse_cursor(params.cursor)
    if params.sort == "recent":
        qs = qs.order_by("-last_message_at", "-id")
        if cursor is not None and cursor[0] is not None:
            value, pk = cursor
            # A range the index can seek to, minus the ties already shown.
            qs = qs.filter(Q(last_message_at__lte=value) & ~Q(last_message_at=value, id__gte=pk))
        rows = list(qs[: page_size + 1])
        key = "last_message_at"
    elif params.sort == "closing":
        # Contact.window_ends_at is stored and indexed; the window is open
        # exactly while it is later than now (see wechat.models.window_end_expression).
        key = "contact__window_ends_at"
        open_now = Q(contact__window_ends_at__gt=now)
        closed_now = Q(contact__window_ends_at__isnull=True) | Q(contact__window_ends_at__lte=now)
        rows = _nulls_last_page(qs, key, cursor, page_size + 1, valued=open_now, tail=closed_now)
        for row in rows:
            ends = row.contact.window_ends_at
            row.closes_at = ends if ends is not None and ends > now else None
        key = "closes_at"
    else:
        key = "waiting_since"
        rows = _nulls_last_page(qs, key, cursor, page_size + 1)
    next_cursor = ""
    if len(rows) > page_size:
        rows = rows[:page_size]
        last = rows[-1]
        next_cursor = _make_cursor(getattr(last, key), last.pk)
    return Page(rows, next_cursor)


def _nulls_last_page(qs, key, cursor, limit, *, valued=None, tail=None):
    """Ascending on `key`, rows without a value after all others, in two index-friendly reads.

    `ORDER BY … NULLS LAST` is emulated on SQLite with an expression that no
    index serves (a sort of the whole tab); two plain ascending reads are
    served by the (status, waiting_since) index on both databases. `valued`
    and `tail` split the rows when "no value" means more than NULL.
    """
    if valued is None:
        valued, tail = Q(**{f"{key}__isnull": False}), Q(**{f"{key}__isnull": True})
    rows = []
    in_null_tail = cursor is not None and cursor[0] is None
    if not in_null_tail:
        head = qs.filter(valued).order_by(key, "id")
        if cursor is not None:
            value, pk = cursor
            head = head.filter(Q(**{f"{key}__gte": value}) & ~Q(**{key: value, "id__lte": pk}))
        rows = list(head[:limit])
    if len(rows) < limit:
        rest = qs.filter(tail).order_by("id")
        if in_null_tail:
            rest = rest.filter(id__gt=cursor[1])
        rows += list(rest[: limit - len(rows)])
    return rows


def _make_cursor(value, pk):
    return f"{value.isoformat() if value else ''}~{pk}"


def _parse_cursor(raw):
    if not raw or "~" not in raw:
        return None
    value, _sep, pk = raw.rpartition("~")
    try:
        pk = int(pk)
        value = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    if value is not None and value.tzinfo is None:
        return None
    return value, pk


@cache
def _badge_sql(account_count):
    """Both tab badges in one statement, written out (see tab_badges); identifiers from model metadata."""
    q = connection.ops.quote_name
    conversation, inbound, marker = (q(m._meta.db_table) for m in (Conversation, InboundMessage, ReadMarker))
    accounts = ", ".join(["%s"] * account_count)
    # The same conditions as conversation_page's unread count: an inbound row after the read marker.
    # No value in the text: quoted table names and placeholders only.
    scoped = (
        f"SELECT c.id FROM {conversation} c WHERE {{who}} AND c.account_id IN ({accounts})"  # noqa: S608
        " AND c.status <> %s"
        f" AND EXISTS (SELECT 1 FROM {inbound} m WHERE m.conversation_id = c.id AND m.id > COALESCE("
        f"(SELECT r.last_read_inbound_id FROM {marker} r WHERE r.conversation_id = c.id AND r.user_id = %s LIMIT 1),"
        " 0)) LIMIT %s"
    )
    mine, nobody = scoped.format(who="c.assignee_id = %s"), scoped.format(who="c.assignee_id IS NULL")
    return f"SELECT (SELECT COUNT(*) FROM ({mine}) mine), (SELECT COUNT(*) FROM ({nobody}) nobody)"  # noqa: S608


def tab_badges(*, user, account_ids):
    """Conversations with unread messages in Mine and Unassigned (capped), for tabs and the title.

    One bounded count each, in one statement written out in SQL: it runs on
    every list refresh, and compiling two correlated-subquery counts through
    the ORM cost more than the database took to answer them.
    """
    account_ids = [int(pk) for pk in account_ids]
    if not account_ids:
        return {"mine": 0, "unassigned": 0}
    resolved, limit = Conversation.Status.RESOLVED.value, BADGE_CAP + 1
    params = [user.pk, *account_ids, resolved, user.pk, limit, *account_ids, resolved, user.pk, limit]
    with connection.cursor() as cursor:
        cursor.execute(_badge_sql(len(account_ids)), params)
        mine, unassigned = cursor.fetchone()
    return {"mine": mine, "unassigned": unassigned}


# --- one conversation --------------------------------------------------------


@dataclass(frozen=True)
class Item:
    kind: str  # "in", "out", "activity"
    at: object
    obj: object

    @property
    def key(self):
        return f"{self.kind}-{self.obj.pk}"


def timeline(conversation, *, limit=TIMELINE_LIMIT):
    """The last `limit` things that happened, oldest first: messages both ways and activity."""
    inbound = InboundMessage.objects.filter(conversation=conversation).defer("raw_xml").order_by("-id")[:limit]
    outbound = OutboundMessage.objects.filter(conversation=conversation).select_related("agent").order_by("-id")[:limit]
    activity = (
        Activity.objects.filter(conversation=conversation).select_related("actor", "target").order_by("-id")[:limit]
    )
    outbound = list(outbound)
    _attach_assets(conversation, outbound)
    items = itertools.chain(
        (Item("in", m.received_at, m) for m in inbound),
        (Item("out", m.created_at, m) for m in outbound),
        (Item("activity", a.created_at, a) for a in activity),
    )
    ordered = sorted(items, key=lambda item: (item.at, item.kind != "in", item.obj.pk))
    return ordered[-limit:]


def _attach_assets(conversation, outbound):
    """Library items the replies used, so an image reply shows the image (one query)."""
    wanted = {}
    for message in outbound:
        message.asset = None
        body = message.payload.get(message.msgtype) if isinstance(message.payload, dict) else None
        if isinstance(body, dict) and body.get("media_id"):
            wanted.setdefault(body["media_id"], []).append(message)
    if not wanted:
        return
    for asset in MediaAsset.objects.filter(account_id=conversation.account_id, media_id__in=list(wanted)):
        for message in wanted.get(asset.media_id, []):
            message.asset = asset


def past_conversations(conversation, *, limit=10):
    return list(
        Conversation.objects.filter(contact_id=conversation.contact_id)
        .exclude(pk=conversation.pk)
        .select_related("assignee")
        .order_by("-created_at")[:limit]
    )
