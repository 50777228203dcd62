"""In a real browser: the news card preview follows the form; an operator finds, exports and resends a failure."""

import csv
import io
import os
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.admin.conftest import open_window, outbound
from wechat import errors
from wechat.models import OutboundMessage

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"

# Playwright's sync API keeps an event loop in this thread; the ORM calls made
# between browser steps (and the flush after each test) are ordinary blocking calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def login(browser, wechat, request):
    contexts = []
    failures_before = request.session.testsfailed

    def open_as(user):
        context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(f"{wechat.base}/admin/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "pw-" + user.username)
        page.click("input[type=submit]")
        page.wait_for_url(f"{wechat.base}/admin/")
        return page

    yield open_as
    failed = request.session.testsfailed > failures_before
    for i, context in enumerate(contexts):
        if failed:
            # A screenshot makes a broken page easy to see.
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for page in context.pages:
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}.png"))
        context.close()


def test_the_news_card_preview_follows_what_the_admin_types(login, admin_user, wechat):
    page = login(admin_user)
    page.goto(f"{wechat.base}/admin/wechat/newstemplate/add/")
    page.fill("#id_name", "双十一")
    page.fill("#id_title", "双十一 全场五折")
    page.fill("#id_description", "仅限今天")
    page.fill("#id_url", "https://example.com/sale")
    assert page.text_content("#news-card .news-card-title") == "双十一 全场五折"
    assert page.text_content("#news-card .news-card-desc") == "仅限今天"
    assert page.text_content("#news-card .news-card-link") == "https://example.com/sale"
    page.click("input[name=_save]")
    page.wait_for_url(f"{wechat.base}/admin/wechat/newstemplate/")
    assert "双十一" in page.content()


def test_an_operator_finds_yesterdays_failure_exports_it_and_resends_it(login, operator, account, contact, wechat):
    open_window(contact)
    day = timezone.localdate() - timedelta(days=1)
    failed = outbound(
        account,
        contact,
        status="failed",
        errcode=45047,
        text="第六条回复",
        created_at=datetime.combine(day, time(15, 0), tzinfo=timezone.get_current_timezone()),
    )
    outbound(account, contact, status="sent", text="今天发出的")
    page = login(operator)

    page.goto(f"{wechat.base}/admin/wechat/outboundmessage/")
    page.click("#changelist-filter >> text=昨天")
    page.wait_for_url("**day=yesterday*")
    page.click(f"#changelist-filter >> text=45047 · {errors.describe(45047)}")
    page.wait_for_url("**code=45047*")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    assert errors.describe(45047) in rows.first.inner_text()

    with page.expect_download() as download:
        page.click("a.export-csv")
    text = download.value.path().read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    header, *lines = list(csv.reader(io.StringIO(text[1:])))
    assert [dict(zip(header, line, strict=True))["编号"] for line in lines] == [str(failed.pk)]

    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "resend")
    page.click("button[name=index]")
    page.wait_for_selector("#resend-list")
    assert "第六条回复" in page.inner_text("#resend-list")
    page.click("input[type=submit][value='确认重发']")
    page.wait_for_selector("ul.messagelist")
    assert "已重发 1 条消息" in page.inner_text("ul.messagelist")
    assert OutboundMessage.objects.get(resend_of=failed).agent == operator


def test_the_dashboard_draws_its_charts(login, operator, account, contact, wechat):
    outbound(account, contact, status="sent")
    outbound(account, contact, status="failed", errcode=40003)
    page = login(operator)
    page.click("#ops-dashboard-link")
    page.wait_for_url(f"{wechat.base}/ops/")
    assert page.locator("svg.chart rect.sent").count() == 1
    assert page.locator("svg.chart rect.failed").count() == 1
    assert page.text_content("#card-rate svg text") == "50.0%"
    assert errors.describe(40003) in page.inner_text("#panel-errcodes")
