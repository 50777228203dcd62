"""The test vectors of ../shared/wechat-api.md §6.1 and §7.5."""

import pytest

from wechat import crypto
from wechat.pushes import parse_push

# §7.5 A — WxJava WxCryptUtilTest (Tencent's sample).
A_TOKEN = "pamtest"
A_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
A_APPID = "wxb11529c136998cb6"
A_ENCRYPT = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="

# §7.5 B — wechatpy tests/test_crypto.py.
B_TOKEN = "123456"
B_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
B_ID = "wx49f0ab532d5d035a"
B_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh"
    "6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQq"
    "Gp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7F"
    "S709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)


def test_url_signature_vector():
    assert crypto.signature("test", "1410685589", "test") == "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
    assert crypto.check_signature("test", "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "1410685589", "test")
    assert not crypto.check_signature("test", "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe", "1410685589", "test")


def test_aes_key_decodes_to_the_documented_bytes():
    assert crypto.decode_key(A_KEY).hex() == "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051"


def test_vector_a_encrypts_byte_for_byte():
    encrypted = crypto.encrypt(A_KEY, A_APPID, "我是中文abcd123", random_bytes=b"aaaabbbbccccdddd")
    assert encrypted == A_ENCRYPT


def test_vector_a_decrypts_and_signs():
    assert crypto.decrypt(A_KEY, A_APPID, A_ENCRYPT).decode("utf-8") == "我是中文abcd123"
    assert crypto.signature(A_TOKEN, "1409304348", "xxxxxx", A_ENCRYPT) == "82c962d39941aa48552f90ef55aa323dc620cc10"


def test_vector_b_echo_signature_and_decrypt():
    echo = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
    assert crypto.signature(B_TOKEN, "1411443780", "437374425", echo) == "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
    assert crypto.decrypt(B_KEY, B_ID, echo) == b"5927782489442352469"


def test_vector_b_message_signature_and_decrypt():
    assert crypto.check_signature(
        B_TOKEN, "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", B_ENCRYPT
    )
    push = parse_push(crypto.decrypt(B_KEY, B_ID, B_ENCRYPT))
    assert push.content == "test"
    assert push.from_user == "messense"


def test_encrypted_reply_envelope_signature_matches():
    xml = crypto.encrypted_reply(
        B_KEY, B_ID, B_TOKEN, "<xml/>", "1411525903", "461056294", random_bytes=b"1234567890123456"
    )
    encrypted = xml.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    sig = xml.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    assert sig == crypto.signature(B_TOKEN, "1411525903", "461056294", encrypted)
    assert crypto.decrypt(B_KEY, B_ID, encrypted) == b"<xml/>"


def test_it_rejects_the_wrong_appid():
    with pytest.raises(crypto.CryptoError, match="appid"):
        crypto.decrypt(A_KEY, "wx_someone_else", A_ENCRYPT)


@pytest.mark.parametrize("tail", [bytes([0]), bytes([33]), bytes([5, 5, 5, 4, 5])])
def test_it_validates_the_pad_value(tail):
    data = b"x" * 27 + tail
    with pytest.raises(crypto.CryptoError, match="padding"):
        crypto.unpad(data)


def test_padding_uses_block_32():
    assert len(crypto.pad(b"")) == 32
    assert crypto.pad(b"a" * 32)[-32:] == bytes([32]) * 32
    assert crypto.unpad(crypto.pad(b"abc")) == b"abc"


def test_previous_key_is_tried_during_rotation():
    old, new = A_KEY, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
    encrypted = crypto.encrypt(old, A_APPID, "<xml/>")
    message, used = crypto.decrypt_with_any([new, old], A_APPID, encrypted)
    assert message == b"<xml/>"
    assert used == old


def test_garbage_ciphertext_is_a_crypto_error_not_a_crash():
    for bad in ["not base64!!", "", "AAAA", "A" * 44]:
        with pytest.raises(crypto.CryptoError):
            crypto.decrypt(A_KEY, A_APPID, bad)
