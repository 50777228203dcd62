"""Who may see and do what in the inbox. One place, so pages and sockets agree.

Agents work the accounts they are members of (`OfficialAccount.agents`);
supervisors and admins see every account (docs/architecture.md, Inbox).
Only the assignee, or a supervisor, may send to a follower: two agents
answering the same person unknowingly is the failure this prevents.
"""

from django.utils.translation import gettext as _

from inbox import roles
from wechat.models import OfficialAccount


def sees_all_accounts(user):
    return roles.is_supervisor(user)


def visible_account_ids(user):
    """Ids of the accounts whose conversations `user` may see (a fresh list)."""
    if not user.is_authenticated:
        return []
    if sees_all_accounts(user):
        return list(OfficialAccount.objects.filter(is_active=True).values_list("id", flat=True))
    return list(user.official_accounts.filter(is_active=True).values_list("id", flat=True))


def visible_accounts(user):
    ids = visible_account_ids(user)
    return OfficialAccount.objects.filter(id__in=ids)


def can_see_account(user, account_id):
    if not user.is_authenticated:
        return False
    if sees_all_accounts(user):
        return OfficialAccount.objects.filter(id=account_id, is_active=True).exists()
    return user.official_accounts.filter(id=account_id, is_active=True).exists()


def can_see_conversation(user, conversation):
    return can_see_account(user, conversation.account_id)


def can_work_account(user, account_id):
    """May `user` be assigned conversations of this account?"""
    return user.is_active and can_see_account(user, account_id)


def send_blocker(user, conversation):
    """Why `user` may not reply in `conversation`, or "" when they may."""
    if not can_see_conversation(user, conversation):
        return _("你无权查看这个会话")
    if roles.is_supervisor(user):
        return ""
    if conversation.assignee_id is None:
        return _("会话尚未分配，请先领取再回复")
    if conversation.assignee_id != user.id:
        return _("会话由 %(name)s 负责，只有负责人或主管可以回复") % {"name": display_name(conversation.assignee)}
    return ""


def display_name(user):
    if user is None:
        return ""
    return user.get_full_name() or user.first_name or user.get_username()
