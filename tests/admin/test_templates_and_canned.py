"""News templates (one article, previewed as a card) and canned replies (kind matches what they reference)."""

from datetime import timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from inbox.models import CannedReply
from wechat.models import MediaAsset, NewsTemplate, OfficialAccount

NEWS_ADD = "/admin/wechat/newstemplate/add/"
CANNED_ADD = "/admin/inbox/cannedreply/add/"


def news_form(**overrides):
    data = {
        "name": "营业时间",
        "title": "春节营业时间",
        "description": "除夕至初三休息",
        "url": "https://example.com/hours",
        "picurl": "https://example.com/cover.jpg",
        "_save": "保存",
    }
    data.update(overrides)
    return data


def test_a_valid_news_template_is_saved(admin_client):
    response = admin_client.post(NEWS_ADD, news_form())
    assert response.status_code == 302
    assert NewsTemplate.objects.get().article() == {
        "title": "春节营业时间",
        "description": "除夕至初三休息",
        "url": "https://example.com/hours",
        "picurl": "https://example.com/cover.jpg",
    }


def test_a_news_link_must_be_http_or_https(admin_client):
    response = admin_client.post(NEWS_ADD, news_form(url="javascript:alert(1)"))
    assert response.status_code == 200
    assert not NewsTemplate.objects.exists()
    assert "http" in response.content.decode()


def test_a_news_cover_must_be_jpg_or_png(admin_client):
    response = admin_client.post(NEWS_ADD, news_form(picurl="https://example.com/anim.gif"))
    assert "JPG 或 PNG" in response.content.decode()
    response = admin_client.post(NEWS_ADD, news_form(picurl="https://mmbiz.qpic.cn/x/0?wx_fmt=webp"))
    assert "JPG 或 PNG" in response.content.decode()
    assert not NewsTemplate.objects.exists()
    # WeChat's own picture links carry the format in the query.
    assert admin_client.post(NEWS_ADD, news_form(picurl="https://mmbiz.qpic.cn/x/0?wx_fmt=png")).status_code == 302


def test_the_change_page_previews_the_card_as_the_follower_sees_it(admin_client):
    news = NewsTemplate.objects.create(
        name="n", title="新品<上市>", description="限时八折", url="https://e.com/a", picurl="https://e.com/p.png"
    )
    html = admin_client.get(f"/admin/wechat/newstemplate/{news.pk}/change/").content.decode()
    assert 'id="news-card"' in html
    assert '<div class="news-card-title" data-field="title">新品&lt;上市&gt;</div>' in html
    assert '<div class="news-card-desc" data-field="description">限时八折</div>' in html
    assert 'src="https://e.com/p.png"' in html
    assert "ops/news_preview.js" in html


def library(account, kind, title="素材"):
    return MediaAsset.objects.create(
        account=account,
        title=title,
        kind=kind,
        file=ContentFile(b"x", name=f"{title}.bin"),
        size=1,
        media_id=f"MID-{kind}",
        uploaded_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=3),
    )


def canned_form(account=None, **overrides):
    data = {
        "account": account.pk if account else "",
        "shortcut": "hours",
        "title": "营业时间",
        "kind": "text",
        "text": "",
        "media": "",
        "news": "",
        "_save": "保存",
    }
    data.update(overrides)
    return data


def test_a_text_reply_needs_text_and_nothing_else(admin_client, account):
    response = admin_client.post(CANNED_ADD, canned_form(account))
    assert "需要填写文本" in response.content.decode()
    voice = library(account, "voice")
    response = admin_client.post(CANNED_ADD, canned_form(account, text="你好", media=voice.pk))
    assert "不能引用素材" in response.content.decode()
    assert admin_client.post(CANNED_ADD, canned_form(account, text="每天 9:00–18:00")).status_code == 302
    assert CannedReply.objects.get().text == "每天 9:00–18:00"


def test_an_image_reply_must_point_at_an_image(admin_client, account):
    voice, image = library(account, "voice", "语音"), library(account, "image", "图片")
    response = admin_client.post(CANNED_ADD, canned_form(account, kind="image", media=voice.pk))
    assert response.status_code == 200
    assert "与快捷回复类型“图片”不一致" in response.content.decode()
    assert admin_client.post(CANNED_ADD, canned_form(account, kind="image", media=image.pk)).status_code == 302
    assert CannedReply.objects.get().media == image


def test_a_news_reply_must_point_at_a_news_template(admin_client, account):
    news = NewsTemplate.objects.create(name="n", title="t", url="https://e.com")
    assert "请选择一个图文模板" in admin_client.post(CANNED_ADD, canned_form(account, kind="news")).content.decode()
    assert admin_client.post(CANNED_ADD, canned_form(account, kind="news", news=news.pk)).status_code == 302


def test_media_of_another_account_cannot_be_referenced(admin_client, account):
    other = OfficialAccount.objects.create(appid="wx_other", token="tok")
    foreign = library(other, "image")
    response = admin_client.post(CANNED_ADD, canned_form(account, kind="image", media=foreign.pk))
    assert "另一个公众号" in response.content.decode()
    response = admin_client.post(CANNED_ADD, canned_form(None, kind="image", media=foreign.pk))
    assert "必须指定公众号" in response.content.decode()
    assert not CannedReply.objects.exists()


def test_text_over_2048_bytes_is_refused(admin_client, account):
    response = admin_client.post(CANNED_ADD, canned_form(account, text="长" * 700))  # 2100 bytes
    assert "2048 字节" in response.content.decode()


def test_one_shortcut_for_all_accounts_only_once(admin_client, account):
    CannedReply.objects.create(shortcut="hi", title="问候", text="您好")
    response = admin_client.post(CANNED_ADD, canned_form(None, shortcut="hi", text="你好"))
    assert "同名快捷短语" in response.content.decode()
    assert admin_client.post(CANNED_ADD, canned_form(account, shortcut="hi", text="你好")).status_code == 302
