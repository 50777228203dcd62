"""Benchmark 4: the conversation list on a big account, flat as data grows.

Data is generated with COPY on PostgreSQL, growing one account in steps
(followers / messages): 1k / 10k, 10k / 100k, 100k / 1M — ten messages per
follower, one conversation each, a realistic mix of statuses and assignees.
At each step every list view an agent uses is requested in-process through
Django's full stack (middleware, session, view, template): queries counted,
server time timed (median of several runs after a warm-up).
"""

import os
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from bench import env
from bench.common import log

STEPS = [(1_000, 10_000), (10_000, 100_000), (100_000, 1_000_000)]
RUNS = 7

PAGES = {
    "all, waiting longest (first page)": "/api/conversations/?tab=all&status=open&sort=waiting",
    "all, most recent": "/api/conversations/?tab=all&status=open&sort=recent",
    "all, window closing soonest": "/api/conversations/?tab=all&status=open&sort=closing",
    "mine": "/api/conversations/?tab=mine&status=open&sort=waiting",
    "unassigned": "/api/conversations/?tab=unassigned&status=open&sort=waiting",
    "resolved (the biggest status)": "/api/conversations/?tab=all&status=resolved&sort=recent",
    "all, 5th page (keyset cursor)": "deep:waiting",
    "all, window closing soonest, 5th page": "deep:closing",
    "inbox page HTML (/?tab=all)": "/?tab=all",
}


def _default(field, now):
    from django.db.models import JSONField
    from psycopg.types.json import Jsonb

    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    if field.has_default():
        value = field.get_default()
        return Jsonb(value) if isinstance(field, JSONField) else value
    if field.null:
        return None
    return ""


def copy_rows(model, columns, rows, now):
    """COPY `rows` (tuples in `columns` order, attnames) into `model`'s table."""
    from django.db import connection
    from django.db.models import JSONField
    from psycopg.types.json import Jsonb

    fields = {f.attname: f for f in model._meta.concrete_fields}
    # Generated columns (Contact.window_ends_at) are the database's to fill.
    rest = [f for f in model._meta.concrete_fields if f.attname not in columns and not f.generated]
    fixed = tuple(_default(f, now) for f in rest)
    json_at = [i for i, c in enumerate(columns) if isinstance(fields[c], JSONField)]
    names = ", ".join(f'"{fields[c].column}"' for c in columns) + "".join(f', "{f.column}"' for f in rest)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f'COPY "{model._meta.db_table}" ({names}) FROM STDIN') as copy:
            for row in rows:
                if json_at:
                    row = list(row)
                    for i in json_at:
                        row[i] = Jsonb(row[i])
                copy.write_row(tuple(row) + fixed)
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{model._meta.db_table}\"', 'id'), "
            f'(SELECT max(id) FROM "{model._meta.db_table}"))'
        )


def grow(account, users, start, step, now):
    """Add followers start..step[0] with ten messages each, one conversation each."""
    from wechat.models import Contact, Conversation, InboundMessage

    followers, messages = step
    per = messages // followers
    rng = random.Random(start)
    first_contact = (Contact.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    first_conv = (Conversation.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    first_msg = (InboundMessage.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    count = followers - start
    contacts, conversations, inbound = [], [], []
    for i in range(count):
        n = start + i
        last = now - timedelta(minutes=rng.randint(0, 60 * 72))
        opened = last if last > now - timedelta(hours=48) else None
        contacts.append(
            (first_contact + i, account.pk, f"o_big_{n:07d}", f"客户{n}", last, last, "message" if opened else "",
             opened, opened + timedelta(hours=48) if opened else None, 5 if opened else None, rng.randint(0, 2))
        )  # fmt: skip
        status = rng.choices(["resolved", "open", "pending", "snoozed"], [60, 28, 8, 4])[0]
        assignee = rng.choice([users["agent"].pk, users["colleague"].pk, None]) if status != "resolved" else None
        waiting = last if status in ("open", "pending") and rng.random() < 0.7 else None
        conversations.append(
            (first_conv + i, account.pk, first_contact + i, status, assignee, waiting, last,
             f"第{n}位客户的最后一条消息", "in", last - timedelta(hours=1))
        )  # fmt: skip
        for k in range(per):
            at = last - timedelta(minutes=(per - k) * 3)
            inbound.append(
                (first_msg + i * per + k, account.pk, first_contact + i, first_conv + i, "text",
                 str(10**12 + n * per + k), f"o_big_{n:07d}", env.ORIGINAL_ID, int(at.timestamp()), at, at,
                 f"消息 {k}：请问我的订单 {n} 什么时候到？", {"content": f"消息 {k}"})
            )  # fmt: skip
    copy_rows(
        Contact,
        ["id", "account_id", "openid", "remark", "first_seen_at", "last_inbound_at", "long_opened_by",
         "long_opened_at", "long_expires_at", "long_quota", "long_used"],
        contacts,
        now,
    )  # fmt: skip
    copy_rows(
        Conversation,
        ["id", "account_id", "contact_id", "status", "assignee_id", "waiting_since", "last_message_at",
         "last_message_preview", "last_message_direction", "created_at"],
        conversations,
        now,
    )  # fmt: skip
    copy_rows(
        InboundMessage,
        ["id", "account_id", "contact_id", "conversation_id", "msg_type", "msg_id", "from_user", "to_user",
         "create_time", "sent_at", "received_at", "content", "data"],
        inbound,
        now,
    )  # fmt: skip
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("wechat_contact", "wechat_conversation", "wechat_inboundmessage"):
            cursor.execute(f"ANALYZE {table}")


def people(account):
    from django.contrib.auth.models import Group, User

    users = {}
    for name, role in (("bench_agent", "agent"), ("bench_colleague", "agent"), ("bench_super", "supervisor")):
        user, _ = User.objects.get_or_create(username=name, defaults={"first_name": name})
        user.groups.add(Group.objects.get(name=role))
        if role == "agent":
            account.agents.add(user)
        users[name.split("_")[1]] = user
    return users


def measure(user):
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    out = {}
    for label, url in PAGES.items():
        if url.startswith("deep:"):
            first = f"/api/conversations/?tab=all&status=open&sort={url.removeprefix('deep:')}"
            url, seen = first, set()
            for _ in range(4):
                body = client.get(url).json()
                rows = re.findall(r'data-conversation="(\d+)"', body["html"])
                assert seen.isdisjoint(rows), (label, "a keyset page repeated a row")
                seen.update(rows)
                if not body.get("next_cursor"):
                    break
                url = f"{first}&cursor={quote(body['next_cursor'])}"
        assert client.get(url).status_code == 200  # warm-up
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        # A lazy slice of the live log: read it now.
        queries = len(ctx.captured_queries)
        db_ms = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
        assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        out[label] = {"queries": queries, "ms": round(statistics.median(times), 1), "db_ms": round(db_ms, 1)}
    return out


def run(steps=STEPS):
    from wechat.models import OfficialAccount

    env.wipe_traffic()
    account = OfficialAccount.objects.get(appid=env.APPID)
    users = people(account)
    now = datetime.now(UTC)
    results = []
    start = 0
    for step in steps:
        began = time.monotonic()
        grow(account, users, start, step, now)
        generated = round(time.monotonic() - began, 1)
        start = step[0]
        pages = measure(users["agent"])
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        results.append(
            {"followers": step[0], "messages": step[1], "generate_s": generated, "pages": pages, "load": load}
        )
        worst = max(pages.values(), key=lambda p: p["ms"])
        log(f"list {step[0]} followers / {step[1]} messages: worst {worst['ms']} ms, max queries "
            f"{max(p['queries'] for p in pages.values())} (generated in {generated} s)")  # fmt: skip
    env.wipe_traffic()
    return results
