"""Contact.window_ends_at, the stored column behind "window closing soonest", after every kind of window change.

The database computes it from the window fields, so it must agree with
`wechat.window.check` whoever wrote them: the webhook (message, menu click,
follow, unfollow), a send using quota, a cancelled send giving it back,
WeChat's verdicts (45015 closed, 45047 quota used), a plain UPDATE, and the
clock running out. "Agrees" means: open now exactly when the column is later
than now, and then it is the time `check` says the window closes.
"""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox import queries
from tests.inbox.conftest import follower_event, follower_says
from wechat import errors, outbound, window
from wechat.models import Contact, Conversation

HOUR = timedelta(hours=1)
MIN = timedelta(minutes=1)


def fresh(openid):
    return Contact.objects.get(openid=openid)


def assert_agrees(contact, now):
    decision = window.check(contact.window_state(), now)
    ends = contact.window_ends_at
    assert decision.allowed == (ends is not None and ends > now), (decision, ends)
    if decision.allowed:
        assert ends == decision.expires_at
    return ends


def test_a_message_opens_48_hours(account):
    at = timezone.now()
    follower_says(account, "你好", openid="o_msg", now=at)
    contact = fresh("o_msg")
    assert assert_agrees(contact, at) == contact.long_expires_at
    assert timedelta(hours=47, minutes=59) < contact.window_ends_at - at <= 48 * HOUR


def test_a_menu_click_alone_opens_one_minute_and_after_a_message_keeps_the_48_hours(account):
    follower_event(account, "CLICK", openid="o_click", EventKey="MENU_1")
    contact = fresh("o_click")
    ends = assert_agrees(contact, timezone.now())
    assert ends == contact.short_expires_at and ends - timezone.now() <= MIN

    follower_says(account, "人工客服", openid="o_click")
    follower_event(account, "CLICK", openid="o_click", EventKey="MENU_1")
    contact = fresh("o_click")
    assert contact.short_expires_at < contact.long_expires_at
    assert assert_agrees(contact, timezone.now()) == contact.long_expires_at


def test_follow_opens_and_unfollow_closes(account):
    follower_event(account, "subscribe", openid="o_follow")
    contact = fresh("o_follow")
    assert assert_agrees(contact, timezone.now()) == contact.short_expires_at

    follower_says(account, "再见", openid="o_follow")
    follower_event(account, "unsubscribe", openid="o_follow")
    contact = fresh("o_follow")
    assert not contact.subscribed
    assert contact.window_ends_at is None
    assert_agrees(contact, timezone.now())


def test_sends_use_the_quota_and_a_cancel_gives_it_back(account, agent):
    follower_says(account, "在吗", openid="o_quota")
    follower_event(account, "CLICK", openid="o_quota", EventKey="MENU_1")
    contact = fresh("o_quota")
    long_end = contact.long_expires_at
    sent = []
    # The 1-minute grant pays first (3 sends): the window still ends with the 48-hour one.
    for i in range(3):
        sent.append(outbound.queue_message(account=account, contact=fresh("o_quota"), msgtype="text", data={"content": f"回复 {i}"}, agent=agent))  # fmt: skip
    contact = fresh("o_quota")
    assert contact.short_used == 3
    assert assert_agrees(contact, timezone.now()) == long_end
    for i in range(5):
        sent.append(outbound.queue_message(account=account, contact=fresh("o_quota"), msgtype="text", data={"content": f"再回复 {i}"}, agent=agent))  # fmt: skip
    contact = fresh("o_quota")
    assert contact.long_used == 5
    assert contact.window_ends_at is None
    assert_agrees(contact, timezone.now())
    with pytest.raises(outbound.SendRefused):
        outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "第九条"})

    assert outbound.cancel_message(message=sent[-1], actor=agent)
    contact = fresh("o_quota")
    assert contact.long_used == 4
    assert assert_agrees(contact, timezone.now()) == long_end


@pytest.mark.parametrize(
    ("errcode", "subscribed"), [(errors.WINDOW_CLOSED, True), (errors.NOT_SUBSCRIBED, False), (errors.QUOTA_USED, True)]
)
def test_wechats_verdict_on_a_send_closes_the_column_too(account, errcode, subscribed):
    follower_says(account, "在吗", openid="o_verdict")
    follower_event(account, "CLICK", openid="o_verdict", EventKey="MENU_1")
    contact = fresh("o_verdict")
    assert contact.window_ends_at is not None
    outbound._apply_window_verdict(contact, errcode, timezone.now())
    contact = fresh("o_verdict")
    assert contact.subscribed is subscribed
    assert contact.window_ends_at is None
    assert_agrees(contact, timezone.now())


def test_a_plain_update_statement_keeps_it_right(account):
    """Writers that bypass save() (bulk or raw UPDATE) cannot leave it stale: the database computes it."""
    follower_says(account, "你好", openid="o_raw")
    Contact.objects.filter(openid="o_raw").update(long_used=5)
    assert fresh("o_raw").window_ends_at is None
    Contact.objects.filter(openid="o_raw").update(long_used=4, long_quota=None)
    contact = fresh("o_raw")
    assert contact.window_ends_at == contact.long_expires_at


def test_when_the_time_runs_out_the_column_says_closed(account):
    at = timezone.now()
    follower_says(account, "你好", openid="o_expire", now=at)
    follower_event(account, "CLICK", openid="o_expire", EventKey="MENU_1")
    contact = fresh("o_expire")
    for later in (at + 2 * MIN, at + 47 * HOUR, at + 48 * HOUR, at + 49 * HOUR):
        assert_agrees(contact, later)
    assert contact.window_ends_at <= at + 48 * HOUR


def grants(now):
    """Grants a contact can hold: none, open with quota, used up, past, unlimited."""
    yield None
    for slot, period, quota in ((window.LONG, 48 * HOUR, 5), (window.SHORT, MIN, 3)):
        for opened, used in ((now - period / 2, 0), (now - period / 2, quota), (now - period * 2, 1)):
            yield window.Grant(slot, opened, opened + period, quota, used)
    yield window.Grant("admin", now - HOUR, now + HOUR, None, 7)


def test_every_combination_of_grants_agrees_with_check(account):
    now = timezone.now()
    states = [
        window.WindowState(subscribed=subscribed, long=long, short=short)
        for subscribed, long, short in itertools.product((True, False), grants(now), grants(now))
    ]
    for i, state in enumerate(states):
        contact = Contact(account=account, openid=f"o_combo_{i:03d}")
        contact.set_window_state(state)
        contact.save()
    for i, state in enumerate(states):
        contact = fresh(f"o_combo_{i:03d}")
        assert contact.window_state() == state
        for at in (now - 2 * HOUR, now, now + 30 * MIN, now + 2 * HOUR, now + 50 * HOUR):
            assert_agrees(contact, at)


def test_closing_soonest_orders_by_the_column_across_pages(account, agent):
    """Open windows soonest-closing first (ties by conversation), then closed ones by conversation."""
    base = timezone.now() - 10 * HOUR
    for i in range(9):
        follower_says(account, f"问题 {i}", openid=f"o_sort_{i}", now=base + (i % 4) * HOUR)
    follower_event(account, "CLICK", openid="o_sort_3", EventKey="MENU_1")  # its 48 hours still count
    follower_event(account, "unsubscribe", openid="o_sort_5")
    Contact.objects.filter(openid="o_sort_6").update(long_used=5)
    Contact.objects.filter(openid="o_sort_7").update(long_expires_at=base)

    now = timezone.now()
    conversations = Conversation.objects.select_related("contact").order_by("id")
    open_now = sorted(
        (c for c in conversations if window.check(c.contact.window_state(), now).allowed),
        key=lambda c: (window.check(c.contact.window_state(), now).expires_at, c.pk),
    )
    closed = [c for c in conversations if c not in open_now]
    assert len(open_now) == 6 and [c.contact.openid for c in closed] == ["o_sort_5", "o_sort_6", "o_sort_7"]

    seen, cursor = [], ""
    for _page in range(10):
        params = queries.ListParams(tab="all", sort="closing", cursor=cursor)
        page = queries.conversation_page(user=agent, account_ids=[account.pk], params=params, now=now, page_size=2)
        seen += [(c.pk, c.closes_at) for c in page.rows]
        cursor = page.next_cursor
        if not cursor:
            break
    assert [pk for pk, _ends in seen] == [c.pk for c in open_now + closed]
    expected_ends = [window.check(c.contact.window_state(), now).expires_at for c in open_now] + [None] * 3
    assert [ends for _pk, ends in seen] == expected_ends
