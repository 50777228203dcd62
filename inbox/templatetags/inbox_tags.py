from django import template
from django.utils.safestring import mark_safe
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


def localized_label(described):
    """describe()'s label ("47h12m · 4 left", "closed") in the page's language."""
    if not described["open"]:
        return _("已关闭")
    countdown = described["label"].split(" · ")[0]
    remaining = "∞" if described["remaining"] is None else described["remaining"]
    return _("%(countdown)s · 剩 %(n)s 条") % {"countdown": countdown, "n": remaining}


@register.filter
def dictget(mapping, key):
    return mapping.get(key, []) if mapping else []
