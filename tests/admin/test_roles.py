"""Who may open what: admins manage, operators read, agents stay out of the admin and /ops/."""

import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client

from wechat.models import OfficialAccount


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_an_agent_is_sent_to_the_admin_login_page(agent):
    response = logged_in(agent).get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_agent_is_refused_the_dashboard(agent):
    assert logged_in(agent).get("/ops/").status_code == 403


def test_a_supervisor_is_refused_the_dashboard_and_the_admin(supervisor):
    client = logged_in(supervisor)
    assert client.get("/ops/").status_code == 403
    assert client.get("/admin/wechat/outboundmessage/").status_code == 302


def test_an_anonymous_visitor_is_sent_to_log_in_from_the_dashboard(client, db):
    response = client.get("/ops/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_operators_and_admins_see_the_dashboard(operator_client, admin_client):
    assert operator_client.get("/ops/").status_code == 200
    assert admin_client.get("/ops/").status_code == 200


@pytest.mark.parametrize(
    "model",
    [
        "outboundmessage",
        "sendlog",
        "auditlog",
        "inboundmessage",
        "conversation",
        "contact",
        "mediaasset",
        "newstemplate",
    ],
)
def test_an_operator_reads_the_logs_and_the_library(operator_client, model):
    assert operator_client.get(f"/admin/wechat/{model}/").status_code == 200


def test_an_operator_cannot_see_or_change_accounts(operator_client, account):
    assert operator_client.get("/admin/wechat/officialaccount/").status_code == 403
    assert operator_client.get(f"/admin/wechat/officialaccount/{account.pk}/change/").status_code == 403
    response = operator_client.post(
        f"/admin/wechat/officialaccount/{account.pk}/change/",
        {"appid": account.appid, "name": "被改了", "crypto_mode": "plain", "token_mode": "stable", "is_active": "on"},
    )
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.name == "测试公众号"


def test_an_operator_cannot_upload_media_or_edit_templates(operator_client, account):
    assert operator_client.get("/admin/wechat/mediaasset/add/").status_code == 403
    assert operator_client.get("/admin/wechat/newstemplate/add/").status_code == 403
    assert operator_client.get("/admin/auth/user/").status_code == 403


def test_an_admin_manages_accounts_users_and_canned_replies(admin_client, account):
    assert admin_client.get(f"/admin/wechat/officialaccount/{account.pk}/change/").status_code == 200
    assert admin_client.get("/admin/wechat/mediaasset/add/").status_code == 200
    assert admin_client.get("/admin/inbox/cannedreply/add/").status_code == 200
    assert admin_client.get("/admin/auth/user/").status_code == 200


def test_nobody_can_add_or_edit_ledger_rows_in_the_admin(admin_client):
    assert admin_client.get("/admin/wechat/outboundmessage/add/").status_code == 403
    assert admin_client.get("/admin/wechat/sendlog/add/").status_code == 403
    assert admin_client.get("/admin/wechat/auditlog/add/").status_code == 403


def test_the_migration_gives_each_role_its_permissions(db):
    def codenames(role):
        return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

    operator = codenames("operator")
    assert {"view_outboundmessage", "view_sendlog", "view_auditlog", "view_mediaasset"} <= operator
    assert not {p for p in operator if not p.startswith("view_")}
    admin = codenames("admin")
    assert {"change_officialaccount", "add_mediaasset", "change_user", "change_group", "add_cannedreply"} <= admin
    supervisor = codenames("supervisor")
    assert {"change_cannedreply", "view_conversation"} <= supervisor
    assert "change_officialaccount" not in supervisor
    assert codenames("agent") == set()


def test_create_console_user_makes_staff_of_operators_only(account):
    out = io.StringIO()
    call_command(
        "create_console_user", "--username", "ops1", "--role", "operator", "--password", "long-enough-1", stdout=out
    )
    call_command(
        "create_console_user",
        "--username",
        "li",
        "--role",
        "agent",
        "--password",
        "long-enough-2",
        "--account",
        account.appid,
        stdout=out,
    )
    ops1, li = User.objects.get(username="ops1"), User.objects.get(username="li")
    assert ops1.is_staff and not li.is_staff
    assert list(ops1.groups.values_list("name", flat=True)) == ["operator"]
    assert li in account.agents.all()
    assert ops1.check_password("long-enough-1")
    assert logged_in(ops1).get("/admin/wechat/sendlog/").status_code == 200
    assert "Created operator ops1" in out.getvalue()


def test_create_console_user_switches_roles_without_leaving_old_powers(db):
    call_command(
        "create_console_user",
        "--username",
        "zhou",
        "--role",
        "admin",
        "--password",
        "long-enough-3",
        stdout=io.StringIO(),
    )
    call_command("create_console_user", "--username", "zhou", "--role", "agent", stdout=io.StringIO())
    zhou = User.objects.get(username="zhou")
    assert list(zhou.groups.values_list("name", flat=True)) == ["agent"]
    assert not zhou.is_staff
    assert zhou.check_password("long-enough-3")


def test_create_console_user_refuses_an_unknown_account(db):
    with pytest.raises(CommandError, match="wx_nope"):
        call_command(
            "create_console_user",
            "--username",
            "x",
            "--role",
            "agent",
            "--password",
            "long-enough-4",
            "--account",
            "wx_nope",
            stdout=io.StringIO(),
        )
    assert not User.objects.filter(username="x").exists()
    assert OfficialAccount.objects.count() == 0


def test_the_admin_header_links_operators_to_the_dashboard(operator_client, admin_client):
    for client in (operator_client, admin_client):
        html = client.get("/admin/").content.decode()
        assert "Kefu Console 客服工作台管理" in html
        assert 'href="/ops/" id="ops-dashboard-link"' in html
