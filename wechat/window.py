"""The reply window and quota of ../shared/wechat-api.md §3, as pure functions.

A follower's action grants the account a number of customer-service sends
valid for a period:

* a message (any standard type)                  → 5 sends for 48 hours ("long" grant)
* CLICK, scancode_push, scancode_waitmsg menus,
  subscribe, SCAN                                → 3 sends for 1 minute ("short" grant)
* VIEW, LOCATION and every other event           → nothing
* unsubscribe                                    → everything closes

A new message re-grants 5 / 48 h rather than stacking (§3.1: "remaining = 5 −
sends since the latest qualifying action"). A short grant after a message adds
its own 3 / 1 min and leaves the 48-hour grant alone: the two coexist and a send
is allowed while either has time and quota left. The clock is always passed in.
WeChat's own errcodes (45015, 45047, 43004) still have the final word; see
`close` and `exhaust`.
"""

from dataclasses import dataclass, replace
from datetime import timedelta

LONG = "long"
SHORT = "short"

LONG_QUOTA = 5
LONG_PERIOD = timedelta(hours=48)
SHORT_QUOTA = 3
SHORT_PERIOD = timedelta(minutes=1)

MESSAGE_TYPES = frozenset({"text", "image", "voice", "video", "shortvideo", "location", "link", "file"})
SHORT_GRANT_EVENTS = frozenset({"CLICK", "scancode_push", "scancode_waitmsg", "subscribe", "SCAN"})

# Reasons a send is refused; the UI turns them into words.
UNSUBSCRIBED = "unsubscribed"
NEVER_OPENED = "never_opened"
EXPIRED = "expired"
QUOTA_USED = "quota_used"

REASON_TEXT = {
    UNSUBSCRIBED: "粉丝已取消关注，无法发送客服消息",
    NEVER_OPENED: "粉丝尚未与公众号互动，客服消息窗口未开启",
    EXPIRED: "客服消息窗口已关闭（超过 48 小时 / 1 分钟），需等待粉丝再次互动",
    QUOTA_USED: "本次窗口的发送条数已用完，需等待粉丝再次互动",
}


@dataclass(frozen=True)
class Grant:
    opened_by: str
    opened_at: object  # aware datetime
    expires_at: object
    quota: int | None  # None: unlimited
    used: int = 0

    def is_open(self, now):
        return now < self.expires_at and (self.quota is None or self.used < self.quota)

    def remaining(self, now):
        if now >= self.expires_at:
            return 0
        if self.quota is None:
            return None
        return max(self.quota - self.used, 0)


@dataclass(frozen=True)
class WindowState:
    subscribed: bool = True
    long: Grant | None = None
    short: Grant | None = None

    def grant(self, slot):
        return self.long if slot == LONG else self.short


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # one of the reason codes when refused
    slot: str = ""  # the grant the next send would use
    remaining: int | None = 0  # sends left now, across both grants (None: unlimited)
    expires_at: object = None  # when the latest open grant ends

    @property
    def reason_text(self):
        return REASON_TEXT.get(self.reason, "")


def classify(msg_type, event=""):
    """What a push does to the window: LONG, SHORT, "close" or None."""
    if msg_type in MESSAGE_TYPES:
        return LONG
    if msg_type == "event":
        if event == "unsubscribe":
            return "close"
        if event in SHORT_GRANT_EVENTS:
            return SHORT
    return None


def apply_action(state, *, msg_type, event="", at):
    """The window after the follower did something at time `at`."""
    effect = classify(msg_type, event)
    if effect == "close":
        return WindowState(subscribed=False, long=None, short=None)
    # Anyone who can message or click the menu is following.
    subscribed = state.subscribed or effect is not None
    opened_by = event or msg_type
    if effect == LONG:
        return replace(
            state,
            subscribed=subscribed,
            long=Grant(opened_by, at, at + LONG_PERIOD, LONG_QUOTA, 0),
        )
    if effect == SHORT:
        return replace(
            state,
            subscribed=subscribed,
            short=Grant(opened_by, at, at + SHORT_PERIOD, SHORT_QUOTA, 0),
        )
    return replace(state, subscribed=subscribed)


def check(state, now):
    """May the account send now? Which grant would pay for it?"""
    if not state.subscribed:
        return Decision(False, UNSUBSCRIBED)
    grants = [g for g in (state.short, state.long) if g is not None]
    if not grants:
        return Decision(False, NEVER_OPENED)
    open_grants = [(slot, g) for slot, g in ((SHORT, state.short), (LONG, state.long)) if g and g.is_open(now)]
    if not open_grants:
        in_time = [g for g in grants if now < g.expires_at]
        return Decision(False, QUOTA_USED if in_time else EXPIRED)
    # Spend the grant that ends soonest first, so the 48-hour quota lasts.
    open_grants.sort(key=lambda item: item[1].expires_at)
    slot = open_grants[0][0]
    remaining = 0
    for _slot, g in open_grants:
        left = g.remaining(now)
        if left is None:
            remaining = None
            break
        remaining += left
    expires_at = max(g.expires_at for _slot, g in open_grants)
    return Decision(True, "", slot, remaining, expires_at)


def reserve(state, now):
    """Use one unit of quota for a send queued now. Returns (decision, new state)."""
    decision = check(state, now)
    if not decision.allowed:
        return decision, state
    grant = state.grant(decision.slot)
    new_grant = replace(grant, used=grant.used + 1)
    new_state = replace(state, **{decision.slot: new_grant})
    return decision, new_state


def release(state, *, slot, opened_at):
    """Give a unit back after a failed or cancelled send — only to the grant it came from."""
    grant = state.grant(slot) if slot in (LONG, SHORT) else None
    if grant is None or grant.opened_at != opened_at or grant.used == 0:
        return state
    return replace(state, **{slot: replace(grant, used=grant.used - 1)})


def close(state, *, unsubscribed=False):
    """WeChat said 45015 / 43004: the window is shut, whatever we thought."""
    return WindowState(subscribed=state.subscribed and not unsubscribed, long=None, short=None)


def exhaust(state, now):
    """WeChat said 45047: the quota of every open grant is used up."""

    def spent(g):
        if g is None or g.quota is None or now >= g.expires_at:
            return g
        return replace(g, used=g.quota)

    return replace(state, long=spent(state.long), short=spent(state.short))


def describe(state, now):
    """A short label for the conversation list: "47h12m · 4 left", "closed"…"""
    decision = check(state, now)
    if not decision.allowed:
        return {"open": False, "reason": decision.reason, "label": "closed", "remaining": 0, "expires_at": None}
    left = (decision.expires_at - now).total_seconds()
    if left >= 3600:
        countdown = f"{int(left // 3600)}h{int(left % 3600 // 60):02d}m"
    elif left >= 60:
        countdown = f"{int(left // 60)} min"
    else:
        countdown = f"{max(int(left), 1)} s"
    remaining = "∞" if decision.remaining is None else str(decision.remaining)
    return {
        "open": True,
        "reason": "",
        "label": f"{countdown} · {remaining} left",
        "remaining": decision.remaining,
        "expires_at": decision.expires_at,
    }


def grant_from_fields(opened_by, opened_at, expires_at, quota, used):
    if opened_at is None or expires_at is None:
        return None
    return Grant(opened_by, opened_at, expires_at, quota, used or 0)


def grant_to_fields(grant):
    if grant is None:
        return {"opened_by": "", "opened_at": None, "expires_at": None, "quota": None, "used": 0}
    return {
        "opened_by": grant.opened_by,
        "opened_at": grant.opened_at,
        "expires_at": grant.expires_at,
        "quota": grant.quota,
        "used": grant.used,
    }
