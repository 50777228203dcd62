"""The conversation list: tabs, filters, sorts, search, unread counts, keyset pages, bounded queries."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox import queries, services
from tests.inbox.conftest import follower_event, follower_says
from wechat.models import Contact, Conversation, OfficialAccount


def rows(client, **params):
    response = client.get("/api/conversations/", params, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def conversation_of(account, openid):
    return Conversation.objects.get(account=account, contact__openid=openid)


@pytest.fixture
def three(account, agent, colleague):
    """Three followers: one is the agent's, one a colleague's, one unassigned."""
    base = timezone.now() - timedelta(hours=3)
    for i, openid in enumerate(["o_mine", "o_theirs", "o_nobody"]):
        follower_says(account, f"来自 {openid} 的问题", openid=openid, now=base + timedelta(minutes=i))
    services.take_conversation(conversation=conversation_of(account, "o_mine"), actor=agent)
    services.take_conversation(conversation=conversation_of(account, "o_theirs"), actor=colleague)


def test_the_tabs_split_mine_unassigned_and_all(client, agent, three):
    client.force_login(agent)
    assert "o_mine" in rows(client, tab="mine")["html"]
    assert "o_theirs" not in rows(client, tab="mine")["html"]
    unassigned = rows(client, tab="unassigned")["html"]
    assert "o_nobody" in unassigned and "o_mine" not in unassigned
    everything = rows(client, tab="all")["html"]
    assert all(openid in everything for openid in ("o_mine", "o_theirs", "o_nobody"))


def test_the_status_filter(client, account, agent, three):
    services.resolve_conversation(conversation=conversation_of(account, "o_mine"), actor=agent)
    client.force_login(agent)
    assert "o_mine" not in rows(client, tab="all", status="open")["html"]
    assert "o_mine" in rows(client, tab="all", status="resolved")["html"]


def test_unread_counts_per_agent_and_the_tab_badges(client, account, agent, colleague, three):
    client.force_login(agent)
    body = rows(client, tab="mine")
    assert body["badges"] == {"mine": 1, "unassigned": 1}
    assert 'class="unread-count"' in body["html"]

    # Opening the conversation reads it, for this agent only.
    client.get(f"/c/{conversation_of(account, 'o_mine').pk}/")
    assert rows(client, tab="mine")["badges"] == {"mine": 0, "unassigned": 1}
    follower_says(account, "再问一句", openid="o_mine")
    follower_says(account, "还有一句", openid="o_mine")
    page = queries.conversation_page(
        user=agent, account_ids=[account.pk], params=queries.ListParams(tab="mine"), now=timezone.now()
    )
    assert [c.unread for c in page.rows] == [2]


def test_search_by_remark_openid_and_message_text(client, account, agent, three):
    contact = Contact.objects.get(openid="o_theirs")
    services.update_remark(contact=contact, actor=agent, remark="张先生")
    follower_says(account, "发票抬头写错了", openid="o_nobody")
    client.force_login(agent)

    assert "o_theirs" in rows(client, tab="all", q="张先生")["html"]
    found = rows(client, tab="all", q="o_mi")["html"]
    assert "o_mine" in found and "o_nobody" not in found
    exact = rows(client, tab="all", q="o_theirs")["html"]  # an exact OpenID: the index path
    assert "o_theirs" in exact and "o_mine" not in exact
    found = rows(client, tab="all", q="发票")["html"]
    assert "o_nobody" in found and "o_mine" not in found


def test_waiting_longest_first(client, account, agent, three):
    client.force_login(agent)
    page = queries.conversation_page(
        user=agent, account_ids=[account.pk], params=queries.ListParams(tab="all"), now=timezone.now()
    )
    assert [c.contact.openid for c in page.rows] == ["o_mine", "o_theirs", "o_nobody"]


def test_window_closing_soonest_first_and_closed_windows_last(account, agent, three):
    now = timezone.now()
    follower_event(account, "CLICK", openid="o_nobody", EventKey="MENU_1")  # 1-minute grant (§3.1)
    closed = Contact.objects.get(openid="o_theirs")
    closed.long_expires_at = now - timedelta(seconds=1)
    closed.save(update_fields=["long_expires_at"])

    page = queries.conversation_page(
        user=agent, account_ids=[account.pk], params=queries.ListParams(tab="all", sort="closing"), now=now
    )
    assert [c.contact.openid for c in page.rows] == ["o_mine", "o_nobody", "o_theirs"]
    # o_nobody's window ends with its 48-hour grant, after o_mine's (written earlier).
    assert page.rows[0].closes_at < page.rows[1].closes_at
    assert page.rows[2].closes_at is None


def test_a_used_up_quota_counts_as_closed_for_sorting(account, agent, three):
    contact = Contact.objects.get(openid="o_mine")
    contact.long_used = contact.long_quota
    contact.save(update_fields=["long_used"])
    page = queries.conversation_page(
        user=agent, account_ids=[account.pk], params=queries.ListParams(tab="all", sort="closing"), now=timezone.now()
    )
    assert page.rows[-1].contact.openid == "o_mine" and page.rows[-1].closes_at is None


def test_each_row_shows_the_window_at_a_glance(client, account, agent, three):
    follower_event(account, "CLICK", openid="o_nobody", EventKey="MENU_1")
    client.force_login(agent)
    html = rows(client, tab="unassigned")["html"]
    # The follower wrote about three hours ago (5 sends / 48 h) and just clicked
    # a menu (3 sends / 1 min): both grants count, the later end shows (§3.1).
    assert re.search(r"4[45]h\d\dm · 剩 8 条", html)
    follower_says_closed = Contact.objects.get(openid="o_nobody")
    follower_says_closed.long_expires_at = timezone.now() - timedelta(seconds=1)
    follower_says_closed.save(update_fields=["long_expires_at"])
    html = rows(client, tab="unassigned")["html"]
    # Only the menu click's grant is left: 3 sends for one minute.
    assert re.search(r"(1 min|\d+ s) · 剩 3 条", html)


@pytest.mark.parametrize("sort", queries.SORTS)
def test_keyset_pages_cover_every_conversation_once(account, agent, sort):
    base = timezone.now() - timedelta(days=1)
    for i in range(23):
        follower_says(account, f"问题 {i}", openid=f"o_page_{i:02d}", now=base + timedelta(minutes=i % 7))
    # Some answered (no waiting_since), some closed windows: NULLs in the sort key.
    Conversation.objects.filter(contact__openid__in=["o_page_03", "o_page_09", "o_page_15"]).update(waiting_since=None)
    Contact.objects.filter(openid__in=["o_page_04", "o_page_10"]).update(long_expires_at=base)

    seen, cursor = [], ""
    for _page in range(10):
        params = queries.ListParams(tab="all", sort=sort, cursor=cursor)
        page = queries.conversation_page(
            user=agent, account_ids=[account.pk], params=params, now=timezone.now(), page_size=5
        )
        seen += [c.pk for c in page.rows]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(Conversation.objects.values_list("pk", flat=True))
    assert len(seen) == len(set(seen)) == 23


def test_a_broken_cursor_means_the_first_page(client, agent, three):
    client.force_login(agent)
    assert "o_mine" in rows(client, tab="all", cursor="garbage~x")["html"]


def test_an_agent_sees_only_their_accounts(client, account, agent, outsider, three):
    other = OfficialAccount.objects.create(appid="wx_other_acct", token="t2")
    other.agents.add(outsider)
    follower_says(other, "别的公众号", openid="o_elsewhere")
    client.force_login(agent)
    assert "o_elsewhere" not in rows(client, tab="all")["html"]
    client.force_login(outsider)
    html = rows(client, tab="all")["html"]
    assert "o_elsewhere" in html and "o_mine" not in html


def test_the_list_takes_a_bounded_number_of_queries(client, account, agent, django_assert_max_num_queries):
    for i in range(40):
        follower_says(account, f"消息 {i}", openid=f"o_many_{i}")
    for conversation in Conversation.objects.all()[:20]:
        services.take_conversation(conversation=conversation, actor=agent)
    client.force_login(agent)
    client.get("/")  # session, wake-up throttle and the like warmed up

    for params in (
        {"tab": "all"},
        {"tab": "mine", "sort": "closing"},
        {"tab": "unassigned", "sort": "recent"},
        {"tab": "all", "q": "消息 3"},
    ):
        with django_assert_max_num_queries(10):
            body = rows(client, **params)
        assert body["html"].count('class="row') >= 1


def test_the_inbox_page_itself_takes_a_bounded_number_of_queries(client, account, agent, django_assert_max_num_queries):
    for i in range(40):
        follower_says(account, f"消息 {i}", openid=f"o_page_q_{i}")
    client.force_login(agent)
    client.get("/?tab=all")
    with django_assert_max_num_queries(15):
        response = client.get("/?tab=all")
    assert response.status_code == 200


def test_a_long_conversation_renders_without_a_query_per_item(
    client, account, assigned, agent, colleague, django_assert_max_num_queries
):
    for i in range(30):
        follower_says(account, f"第 {i} 条")
        services.add_note(conversation=assigned, actor=colleague if i % 2 else agent, text=f"备注 {i}")
    for i in range(5):
        client.force_login(agent)
        client.post(
            f"/c/{assigned.pk}/send/", {"msgtype": "text", "content": f"回复 {i}"}, HTTP_ACCEPT="application/json"
        )
    client.get(f"/api/c/{assigned.pk}/")
    with django_assert_max_num_queries(15):
        body = client.get(f"/api/c/{assigned.pk}/").json()
    assert body["timeline"].count('class="item in') == 31
    assert body["timeline"].count('class="item out') == 5
    assert body["timeline"].count("activity-note") == 30


def test_tab_badges_count_unread_live_conversations_up_to_the_cap(account, agent, colleague):
    other = OfficialAccount.objects.create(appid="wx_other_badge", token="t3")
    other.agents.add(agent)
    for i in range(queries.BADGE_CAP + 6):  # 4 of them resolved or taken below: still over the cap
        follower_says(account, f"排队 {i}", openid=f"o_queue_{i:03d}")
    follower_says(other, "另一个号", openid="o_other_badge")
    resolved = conversation_of(account, "o_queue_000")
    services.resolve_conversation(conversation=resolved, actor=agent)
    for openid, who in (("o_queue_001", agent), ("o_queue_002", agent), ("o_queue_003", colleague)):
        services.take_conversation(conversation=conversation_of(account, openid), actor=who)
    services.mark_read(conversation=conversation_of(account, "o_queue_002"), user=agent)

    assert queries.tab_badges(user=agent, account_ids=[account.pk]) == {"mine": 1, "unassigned": queries.BADGE_CAP + 1}
    assert queries.tab_badges(user=colleague, account_ids=[account.pk]) == {
        "mine": 1,
        "unassigned": queries.BADGE_CAP + 1,
    }
    assert queries.tab_badges(user=agent, account_ids=[other.pk]) == {"mine": 0, "unassigned": 1}
    assert queries.tab_badges(user=agent, account_ids=[]) == {"mine": 0, "unassigned": 0}
    follower_says(account, "又来一句", openid="o_queue_002")
    assert queries.tab_badges(user=agent, account_ids=[account.pk, other.pk])["mine"] == 2
    services.resolve_conversation(conversation=conversation_of(account, "o_queue_001"), actor=agent)
    assert queries.tab_badges(user=agent, account_ids=[account.pk])["mine"] == 1
