"""Table-driven tests of the reply window and quota (§3), with an injected clock."""

from datetime import UTC, datetime, timedelta

import pytest

from wechat import window

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def after(*actions, state=None):
    """Apply (msg_type, event, offset) actions to a fresh state."""
    state = state or window.WindowState(subscribed=True)
    for msg_type, event, offset in actions:
        state = window.apply_action(state, msg_type=msg_type, event=event, at=T0 + offset)
    return state


def sends(state, n, at):
    results = []
    for _ in range(n):
        decision, state = window.reserve(state, at)
        results.append(decision.allowed)
    return results, state


@pytest.mark.parametrize(
    ("actions", "at", "allowed", "reason", "remaining"),
    [
        # A message grants 5 sends for 48 hours.
        ([("text", "", timedelta(0))], T0 + HOUR, True, "", 5),
        ([("image", "", timedelta(0))], T0 + 47 * HOUR, True, "", 5),
        ([("text", "", timedelta(0))], T0 + 48 * HOUR, False, window.EXPIRED, 0),
        # Menu click, scancode, follow and scan grant 3 sends for 1 minute.
        ([("event", "CLICK", timedelta(0))], T0 + 30 * timedelta(seconds=1), True, "", 3),
        ([("event", "scancode_push", timedelta(0))], T0, True, "", 3),
        ([("event", "scancode_waitmsg", timedelta(0))], T0, True, "", 3),
        ([("event", "subscribe", timedelta(0))], T0, True, "", 3),
        ([("event", "SCAN", timedelta(0))], T0, True, "", 3),
        ([("event", "CLICK", timedelta(0))], T0 + MIN, False, window.EXPIRED, 0),
        # VIEW, LOCATION and other events grant nothing.
        ([("event", "VIEW", timedelta(0))], T0, False, window.NEVER_OPENED, 0),
        ([("event", "LOCATION", timedelta(0))], T0, False, window.NEVER_OPENED, 0),
        ([("event", "TEMPLATESENDJOBFINISH", timedelta(0))], T0, False, window.NEVER_OPENED, 0),
        ([("event", "view_miniprogram", timedelta(0))], T0, False, window.NEVER_OPENED, 0),
        # Unsubscribe closes everything.
        ([("text", "", timedelta(0)), ("event", "unsubscribe", MIN)], T0 + 2 * MIN, False, window.UNSUBSCRIBED, 0),
        # A click after a message adds 3 / 1 min and keeps the 48-hour grant.
        ([("text", "", timedelta(0)), ("event", "CLICK", HOUR)], T0 + HOUR, True, "", 8),
        ([("text", "", timedelta(0)), ("event", "CLICK", HOUR)], T0 + HOUR + 2 * MIN, True, "", 5),
        # A follow after an unfollow reopens a short window.
        ([("event", "unsubscribe", timedelta(0)), ("event", "subscribe", MIN)], T0 + MIN, True, "", 3),
    ],
)
def test_window_table(actions, at, allowed, reason, remaining):
    decision = window.check(after(*actions), at)
    assert decision.allowed is allowed
    assert decision.reason == reason
    assert (decision.remaining or 0) == remaining


def test_a_sixth_send_after_a_message_is_refused():
    results, state = sends(after(("text", "", timedelta(0))), 6, T0 + HOUR)
    assert results == [True] * 5 + [False]
    assert window.check(state, T0 + HOUR).reason == window.QUOTA_USED


def test_a_new_message_regrants_five_rather_than_stacking():
    _results, state = sends(after(("text", "", timedelta(0))), 3, T0 + MIN)
    state = window.apply_action(state, msg_type="text", at=T0 + 2 * MIN)
    assert window.check(state, T0 + 3 * MIN).remaining == 5
    results, _state = sends(state, 6, T0 + 3 * MIN)
    assert results.count(True) == 5


def test_a_click_does_not_shorten_the_48_hour_window():
    state = after(("text", "", timedelta(0)), ("event", "CLICK", HOUR))
    assert window.check(state, T0 + 47 * HOUR).allowed
    assert window.check(state, T0 + 47 * HOUR).expires_at == T0 + 48 * HOUR


def test_short_grant_is_spent_first_so_the_long_quota_lasts():
    state = after(("text", "", timedelta(0)), ("event", "CLICK", HOUR))
    results, state = sends(state, 3, T0 + HOUR)
    assert all(results)
    assert state.short.used == 3
    assert state.long.used == 0
    assert window.check(state, T0 + HOUR).remaining == 5


def test_three_sends_in_a_minute_after_a_click_then_closed():
    results, state = sends(after(("event", "CLICK", timedelta(0))), 4, T0 + timedelta(seconds=10))
    assert results == [True, True, True, False]
    assert window.check(state, T0 + timedelta(seconds=10)).reason == window.QUOTA_USED


def test_release_gives_a_unit_back_only_to_the_grant_it_came_from():
    state = after(("text", "", timedelta(0)))
    decision, state = window.reserve(state, T0 + MIN)
    opened_at = state.long.opened_at
    state = window.release(state, slot=decision.slot, opened_at=opened_at)
    assert state.long.used == 0
    # After a new message the old reservation must not be refunded into the new grant.
    decision, state = window.reserve(state, T0 + MIN)
    state = window.apply_action(state, msg_type="text", at=T0 + 2 * MIN)
    state = window.release(state, slot=decision.slot, opened_at=opened_at)
    assert state.long.used == 0 and state.long.opened_at == T0 + 2 * MIN


def test_server_errors_are_the_final_word():
    state = after(("text", "", timedelta(0)))
    assert not window.check(window.close(state), T0 + MIN).allowed  # 45015
    assert window.check(window.close(state, unsubscribed=True), T0 + MIN).reason == window.UNSUBSCRIBED  # 43004
    assert window.check(window.exhaust(state, T0 + MIN), T0 + MIN).reason == window.QUOTA_USED  # 45047


@pytest.mark.parametrize(
    ("actions", "at", "label"),
    [
        ([("text", "", timedelta(0))], T0 + 48 * MIN, "47h12m · 5 left"),
        ([("event", "CLICK", timedelta(0))], T0, "1 min · 3 left"),
        ([("event", "VIEW", timedelta(0))], T0, "closed"),
    ],
)
def test_labels_for_the_conversation_list(actions, at, label):
    assert window.describe(after(*actions), at)["label"] == label
