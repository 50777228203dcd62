"""Seed the demo: the account, an admin, a supervisor, agents, an operator, sandbox
followers with a little history, canned replies and a news template.

Idempotent: running it again keeps what exists (users keep their passwords).
Only for the demo — it refuses to run unless WECHAT_SANDBOX is on.
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test import Client

from inbox.models import CannedReply
from wechat.models import Conversation, InboundMessage, NewsTemplate, OfficialAccount

USERS = [
    # username, password, role, display name
    ("admin", "admin-demo", "admin", "管理员"),
    ("supervisor", "super-demo", "supervisor", "赵主管"),
    ("agent1", "agent-demo", "agent", "小李"),
    ("agent2", "agent-demo", "agent", "小王"),
    ("operator", "operator-demo", "operator", "运营小周"),
]

# (openid, remark, [(action, fields), …]) — delivered through the real webhook.
FOLLOWERS = [
    (
        "o_demo_zhang",
        "张女士",
        [
            ("subscribe", {}),
            ("text", {"content": "你好，我上周买的蓝牙耳机还没发货，订单号 20261120001 😟"}),
            ("image", {}),
        ],
    ),
    (
        "o_demo_wang",
        "王同学",
        [("subscribe", {"scene": "store_qr_01"}), ("text", {"content": "请问周末门店营业吗？/::D"})],
    ),
    (
        "o_demo_chen",
        "陈先生",
        [
            ("location", {"latitude": "23.134521", "longitude": "113.358803", "label": "广州市天河区体育西路"}),
            ("voice", {"recognition": "我想把收货地址改到公司"}),
        ],
    ),
    ("o_demo_li", "李阿姨", [("click", {"key": "CONTACT_US"})]),
    (
        "o_demo_zhou",
        "",
        [("link", {"title": "商品页面", "description": "这款有货吗", "url": "https://example.com/p/42"})],
    ),
]

CANNED = [
    ("hello", "问候", "您好，我是客服{agent}，很高兴为您服务 😊"),
    ("ship", "发货时间", "您的订单会在 48 小时内发货，发货后会有短信通知，请留意。"),
    ("hours", "营业时间", "门店营业时间：周一至周日 10:00–22:00，节假日照常营业。"),
    ("bye", "结束语", "感谢您的耐心，如还有问题随时留言，祝您生活愉快！"),
]


class Command(BaseCommand):
    help = "Seed the demo data (users, account, sandbox followers). Demo only."

    def handle(self, *args, **options):
        if not settings.WECHAT_SANDBOX:
            raise CommandError("seed_demo is for the demo: set WECHAT_SANDBOX=true")
        call_command("sync_wechat_account", stdout=self.stdout)
        account = OfficialAccount.objects.get(appid=settings.WECHAT_APP_ID)
        for username, password, role, name in USERS:
            args = ["--username", username, "--role", role, "--name", name, "--account", account.appid]
            from django.contrib.auth import get_user_model

            if not get_user_model().objects.filter(username=username).exists():
                args += ["--password", password]
            call_command("create_console_user", *args, stdout=self.stdout)
        self._content(account)
        if not InboundMessage.objects.filter(account=account).exists():
            self._history(account)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _content(self, account):
        for shortcut, title, text in CANNED:
            CannedReply.objects.get_or_create(
                account=None, shortcut=shortcut, defaults={"title": title, "text": text.replace("{agent}", "")}
            )
        NewsTemplate.objects.get_or_create(
            account=account,
            name="双十一活动",
            defaults={
                "title": "双十一狂欢：全场满 300 减 50",
                "description": "活动时间 11 月 1 日至 11 日，点击查看详情",
                "url": "https://example.com/promo/1111",
                "picurl": "https://example.com/static/promo.jpg",
            },
        )

    def _history(self, account):
        from wechat.sandbox import follower as wx

        # Delivered in-process through the real webhook view (signing, crypto,
        # de-duplication and all): the server is not running yet.
        client = Client(SERVER_NAME="127.0.0.1")
        for openid, remark, actions in FOLLOWERS:
            for action, fields in actions:
                result = wx.act(account, openid, action, client=client, **fields)
                if not result.delivered:
                    raise CommandError(f"seed push {action} for {openid} was refused: {result.status}")
            if remark:
                account.contacts.filter(openid=openid).update(remark=remark)
        from django.contrib.auth import get_user_model

        agent1 = get_user_model().objects.get(username="agent1")
        conversation = Conversation.objects.filter(contact__openid="o_demo_chen").first()
        if conversation is not None:
            from inbox import services

            services.assign_conversation(conversation=conversation, assignee=agent1, actor=agent1)
