"""Model permissions for the four roles, and `is_staff` for the roles that use the admin.

admin      everything in wechat and inbox, plus users and groups
operator   reads the ledger, the send logs, the audit log and the library
supervisor works conversations and canned replies (the inbox checks these)
agent      nothing here: agents never open the admin

`apply_role_permissions` is idempotent and also used by
`manage.py create_console_user`, so models added by later migrations can be
granted by running that command (or this function) again.
"""

from django.db import migrations

ADMIN_APPS = ("wechat", "inbox")
ADMIN_EXTRA = (("auth", "user"), ("auth", "group"))

OPERATOR_VIEW = (
    ("wechat", "outboundmessage"),
    ("wechat", "sendlog"),
    ("wechat", "auditlog"),
    ("wechat", "inboundmessage"),
    ("wechat", "conversation"),
    ("wechat", "contact"),
    ("wechat", "mediaasset"),
    ("wechat", "newstemplate"),
)

SUPERVISOR = {
    ("wechat", "conversation"): ("view", "change"),
    ("wechat", "contact"): ("view",),
    ("wechat", "mediaasset"): ("view",),
    ("wechat", "newstemplate"): ("view",),
    ("inbox", "cannedreply"): ("view", "add", "change", "delete"),
    ("inbox", "activity"): ("view", "add"),
}

STAFF_ROLES = ("admin", "operator")


def _ensure_permissions(apps):
    # Permissions are normally created by post_migrate, after every migration;
    # create them now so this migration can hand them out on a fresh database.
    from django.contrib.auth.management import create_permissions

    for label in ("auth", "contenttypes", *ADMIN_APPS):
        try:
            app_config = apps.get_app_config(label)
        except LookupError:
            continue
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def role_permissions(Permission):
    """{role: queryset of Permission} for the roles that get model permissions."""
    from django.db.models import Q

    admin = Q(content_type__app_label__in=ADMIN_APPS)
    for app_label, model in ADMIN_EXTRA:
        admin |= Q(content_type__app_label=app_label, content_type__model=model)
    operator = Q(pk__in=[])
    for app_label, model in OPERATOR_VIEW:
        operator |= Q(content_type__app_label=app_label, content_type__model=model, codename=f"view_{model}")
    supervisor = Q(pk__in=[])
    for (app_label, model), actions in SUPERVISOR.items():
        codenames = [f"{action}_{model}" for action in actions]
        supervisor |= Q(content_type__app_label=app_label, content_type__model=model, codename__in=codenames)
    return {
        "admin": Permission.objects.filter(admin),
        "operator": Permission.objects.filter(operator),
        "supervisor": Permission.objects.filter(supervisor),
        "agent": Permission.objects.none(),
    }


def apply_role_permissions(apps, schema_editor=None):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    User = apps.get_model("auth", "User")
    _ensure_permissions(apps)
    for role, permissions in role_permissions(Permission).items():
        group, _created = Group.objects.get_or_create(name=role)
        group.permissions.set(permissions)
    User.objects.filter(groups__name__in=STAFF_ROLES).update(is_staff=True)


def remove_role_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name__in=("agent", "supervisor", "operator", "admin")):
        group.permissions.clear()


class Migration(migrations.Migration):
    dependencies = [
        # After the inbox engineer's 0003 so the app keeps a single leaf.
        ("inbox", "0003_inbox_presence"),
        ("wechat", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(apply_role_permissions, remove_role_permissions)]
