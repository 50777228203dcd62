"""The four roles are Django groups, created by a migration (inbox 0002)."""

AGENT = "agent"
SUPERVISOR = "supervisor"
OPERATOR = "operator"
ADMIN = "admin"
ALL = (AGENT, SUPERVISOR, OPERATOR, ADMIN)


def has_role(user, *roles):
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    names = getattr(user, "_role_names", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))
        user._role_names = names
    return bool(names.intersection(roles))


def is_supervisor(user):
    return has_role(user, SUPERVISOR, ADMIN)
