from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "wechat.sandbox"
    label = "sandbox"
    verbose_name = "沙箱微信"
