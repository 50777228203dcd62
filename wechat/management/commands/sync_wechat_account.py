from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from wechat import crypto
from wechat.models import OfficialAccount


class Command(BaseCommand):
    help = "Create or update the official account described by the WECHAT_* environment variables."

    def handle(self, *args, **options):
        appid = settings.WECHAT_APP_ID
        if not appid or not settings.WECHAT_TOKEN:
            raise CommandError("WECHAT_APP_ID and WECHAT_TOKEN must be set")
        key = settings.WECHAT_ENCODING_AES_KEY
        if key:
            try:
                crypto.decode_key(key)
            except crypto.CryptoError as exc:
                raise CommandError(f"WECHAT_ENCODING_AES_KEY: {exc}") from exc
        account = OfficialAccount.objects.filter(appid=appid).first()
        created = account is None
        if created:
            account = OfficialAccount(appid=appid)
        if key and account.encoding_aes_key and account.encoding_aes_key != key:
            # Keep the old key so pushes encrypted with it still decrypt (§7.1).
            account.previous_encoding_aes_key = account.encoding_aes_key
        account.token = settings.WECHAT_TOKEN
        account.app_secret = settings.WECHAT_APP_SECRET or account.app_secret
        account.encoding_aes_key = key
        if key and account.crypto_mode == OfficialAccount.CryptoMode.PLAIN:
            account.crypto_mode = OfficialAccount.CryptoMode.SAFE
        if not key:
            account.crypto_mode = OfficialAccount.CryptoMode.PLAIN
        account.original_id = settings.WECHAT_ORIGINAL_ID or account.original_id
        account.name = settings.WECHAT_ACCOUNT_NAME or account.name or appid
        account.save()
        verb = "Created" if created else "Updated"
        self.stdout.write(
            f"{verb} account {account.appid} ({account.name}); secret {account.masked_secret or '(none)'}; "
            f"mode {account.crypto_mode}; webhook path /wechat/{account.appid}/"
        )
