"""Signatures and the safe-mode AES framing of ../shared/wechat-api.md §6.1 and §7.

Pure functions; nothing here touches the database or the clock.
"""

import base64
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat's PKCS#7 block size (§7.1); AES itself works in 16-byte blocks


class CryptoError(ValueError):
    """A ciphertext that is not ours: bad base64, padding, length or appid."""


def signature(token, timestamp, nonce, *extra):
    """SHA1 of the lexicographically sorted strings, concatenated (§6.1, §7.3)."""
    parts = sorted([token, timestamp, nonce, *extra])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()  # noqa: S324  (WeChat mandates SHA1)


def check_signature(token, sig, timestamp, nonce, *extra):
    if not (sig and timestamp and nonce and token):
        return False
    expected = signature(token, timestamp, nonce, *extra)
    return hmac.compare_digest(expected, str(sig).lower())


def decode_key(encoding_aes_key):
    """The 43-character EncodingAESKey → the 32-byte AES key (§7.1)."""
    if not encoding_aes_key or len(encoding_aes_key) != 43:
        raise CryptoError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except ValueError as exc:
        raise CryptoError("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise CryptoError("EncodingAESKey does not decode to 32 bytes")
    return key


def pad(data):
    k = BLOCK - (len(data) % BLOCK)
    return data + bytes([k]) * k


def unpad(data):
    if not data:
        raise CryptoError("empty plaintext")
    k = data[-1]
    # Validate the pad value and every pad byte, not only the last one.
    if k < 1 or k > BLOCK or k > len(data) or data[-k:] != bytes([k]) * k:
        raise CryptoError("bad padding")
    return data[:-k]


def encrypt(encoding_aes_key, appid, message, *, random_bytes=None):
    """Encrypt XML bytes for `appid`; returns the base64 `Encrypt` text (§7.2)."""
    key = decode_key(encoding_aes_key)
    if isinstance(message, str):
        message = message.encode("utf-8")
    rand = random_bytes if random_bytes is not None else os.urandom(16)
    if len(rand) != 16:
        raise CryptoError("random prefix must be 16 bytes")
    plain = rand + struct.pack(">I", len(message)) + message + appid.encode("ascii")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    cipher = encryptor.update(pad(plain)) + encryptor.finalize()
    return base64.b64encode(cipher).decode("ascii")


def decrypt(encoding_aes_key, appid, encrypted):
    """Decrypt the base64 `Encrypt` text; returns the XML bytes, checking the appid."""
    key = decode_key(encoding_aes_key)
    try:
        cipher = base64.b64decode(encrypted, validate=True)
    except ValueError as exc:
        raise CryptoError("Encrypt is not base64") from exc
    if not cipher or len(cipher) % 16:
        raise CryptoError("ciphertext length is not a multiple of the AES block")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = unpad(decryptor.update(cipher) + decryptor.finalize())
    if len(plain) < 20:
        raise CryptoError("plaintext too short")
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise CryptoError("message length exceeds plaintext")
    message = plain[20 : 20 + length]
    received_id = plain[20 + length :]
    if not hmac.compare_digest(received_id, appid.encode("ascii")):
        raise CryptoError("appid does not match")
    return message


def decrypt_with_any(keys, appid, encrypted):
    """Try the current key, then the previous one during a rotation (§7.1)."""
    last_error = CryptoError("no EncodingAESKey configured")
    for key in keys:
        try:
            return decrypt(key, appid, encrypted), key
        except CryptoError as exc:
            last_error = exc
    raise last_error


def encrypted_reply(encoding_aes_key, appid, token, xml, timestamp, nonce, *, random_bytes=None):
    """The encrypted reply envelope of §7.4."""
    encrypted = encrypt(encoding_aes_key, appid, xml, random_bytes=random_bytes)
    sig = signature(token, str(timestamp), nonce, encrypted)
    return (
        f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
        f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp>"
        f"<Nonce><![CDATA[{nonce}]]></Nonce></xml>"
    )
