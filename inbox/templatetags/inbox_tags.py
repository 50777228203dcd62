from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.http import quote
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from inbox import access, faces
from wechat import window

register = template.Library()


@register.filter
def wechat_text(value):
    """Follower or agent text: escaped, faces drawn, line breaks kept."""
    return mark_safe(faces.render(value or "").replace("\n", "<br>"))  # noqa: S308 — escaped by faces.render


@register.filter
def person(user):
    return access.display_name(user)


@register.simple_tag
def window_badge(contact, now):
    """`wechat.window.describe` of the follower, with what the page needs to tick it down."""
    described = window.describe(contact.window_state(), now)
    expires = described["expires_at"]
    return {
        "open": described["open"],
        "remaining": "" if described["remaining"] is None else described["remaining"],
        "expires_at": expires.isoformat() if expires else "",
        "label": localized_label(described),
        "reason": described["reason"],
    }


def localized_label(described, closed=None, left=None):
    """describe()'s label ("47h12m · 4 left", "closed") in the page's language.

    `closed` and `left` are the two translations, for callers that label many rows.
    """
    if not described["open"]:
        return closed or _("已关闭")
    countdown = described["label"].split(" · ")[0]
    remaining = "∞" if described["remaining"] is None else described["remaining"]
    return (left or _("%(countdown)s · 剩 %(n)s 条")) % {"countdown": countdown, "n": remaining}


_PK = 987654321  # stands for a conversation's pk in a reversed URL


@register.simple_tag
def list_rows(rows, params, now):
    """What each row of the conversation list shows (inbox/_rows.html), worked out once per page.

    The same text the template filters would produce (`date` in the current
    time zone, `timesince`, `urlencode`, the window badge), without a template
    lookup, filter call or translation per row: the list renders 30 rows on
    every live update.
    """
    closed, left, waiting = _("已关闭"), _("%(countdown)s · 剩 %(n)s 条"), _("已等待 %(since)s")
    unread_title, you, nobody = _("未读消息"), _("我方："), _("未分配")
    since_title = escape(_("等待开始"))
    zone = timezone.get_current_timezone()
    head, tail = (escape(part) for part in reverse("inbox:conversation", args=[_PK]).split(str(_PK)))
    query = f"?tab={escape(params.tab)}&amp;status={escape(params.status)}&amp;sort={escape(params.sort)}"
    if params.q:
        query += f"&amp;q={escape(quote(params.q, safe='/'))}"
    out = []
    for c in rows:
        described = window.describe(c.contact.window_state(), now)
        expires, remaining = described["expires_at"], described["remaining"]
        at = c.last_message_at.astimezone(zone)
        # Numbers as text: what the template's localize() makes of an int (no grouping).
        row = {
            "id": c.pk,
            "pk": str(c.pk),
            "unread": str(c.unread) if c.unread else "",
            "unread_title": unread_title,
            "assignee_id": str(c.assignee_id) if c.assignee_id else "",
            "href": mark_safe(f"{head}{c.pk}{tail}{query}"),  # noqa: S308 — every part escaped above
            "who": str(c.contact),
            "open": described["open"],
            "expires_at": expires.isoformat() if expires else "",
            "remaining": "" if remaining is None else str(remaining),
            "label": localized_label(described, closed, left),
            "you": you if c.last_message_direction == "out" else "",
            "preview": wechat_text(c.last_message_preview),
            "assignee": access.display_name(c.assignee) if c.assignee else nobody,
            "at_iso": at.isoformat(),
            "at": f"{at:%m-%d %H:%M}",
            "waiting_title": "",
        }
        if c.waiting_since:
            row["waiting_title"] = mark_safe(f"{since_title} {c.waiting_since.astimezone(zone):%Y-%m-%d %H:%M}")  # noqa: S308
            row["waiting"] = mark_safe(waiting % {"since": escape(timesince(c.waiting_since, now))})  # noqa: S308
        out.append(row)
    return out


@register.filter
def dictget(mapping, key):
    return mapping.get(key, []) if mapping else []
