"""Create (or update) a console user with one role.

    manage.py create_console_user --role operator --username wang --password ...
    manage.py create_console_user --role agent --username li --account wx123 --password-stdin

Admins and operators get `is_staff` (they use the Django admin and /ops/);
agents and supervisors do not. The role's group permissions are refreshed on
every run, so models added after inbox 0003 are granted too.
"""

import importlib
import sys

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from inbox import roles
from wechat.models import OfficialAccount

_permissions = importlib.import_module("inbox.migrations.0003_role_permissions")


class Command(BaseCommand):
    help = "Create or update a console user with a role (agent, supervisor, operator, admin)."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--role", required=True, choices=roles.ALL)
        parser.add_argument("--password", help="Prefer --password-stdin: arguments show up in `ps`.")
        parser.add_argument("--password-stdin", action="store_true", help="Read the password from standard input.")
        parser.add_argument("--email", default="")
        parser.add_argument("--name", default="", help="Display name (first_name).")
        parser.add_argument(
            "--account",
            action="append",
            default=[],
            metavar="APPID",
            help="Official account this user works (repeatable; agents need at least one).",
        )

    def handle(self, *args, username, role, password, password_stdin, email, name, account, **options):
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        accounts = list(OfficialAccount.objects.filter(appid__in=account))
        missing = set(account) - {a.appid for a in accounts}
        if missing:
            raise CommandError(f"No official account with AppID {', '.join(sorted(missing))}")
        User = get_user_model()
        with transaction.atomic():
            _permissions.apply_role_permissions(apps)
            user = User.objects.filter(username=username).first()
            created = user is None
            if created:
                if not password:
                    raise CommandError("A new user needs --password or --password-stdin")
                user = User(username=username)
            if password:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("; ".join(exc.messages)) from exc
                user.set_password(password)
            user.email = email or user.email
            user.first_name = name or user.first_name
            user.is_staff = role in _permissions.STAFF_ROLES
            user.save()
            # One role per user: switching roles must not leave the old powers behind.
            user.groups.remove(*Group.objects.filter(name__in=roles.ALL).exclude(name=role))
            user.groups.add(Group.objects.get(name=role))
            for acc in accounts:
                acc.agents.add(user)
        verb = "Created" if created else "Updated"
        where = f"; accounts {', '.join(a.appid for a in accounts)}" if accounts else ""
        self.stdout.write(f"{verb} {role} {username} (staff: {'yes' if user.is_staff else 'no'}){where}")
