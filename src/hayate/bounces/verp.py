"""VERP return paths: a signed token per (message, recipient) in the envelope sender.

An outbound message to ``rcpt`` gets the envelope sender ``b-<token>@<bounce domain>``, so a
bounce that comes back names the exact message and recipient even when its text cannot be
parsed. The token is RFC 4648 base32 without padding, in lower case: letters and digits
only, safe in a dot-atom local part and unharmed by servers that change its case.

Token bytes (before base32)::

    mac[6] | flags[1] | queue id | recipient

- ``mac``: HMAC-SHA256(secret, everything after it), truncated to 48 bits. A forger has
  to guess it online, one bounce per try; a modified token fails the check.
- ``flags``: bit 0 = the queue id is upper-case hex (packed two digits a byte, preceded by
  its digit count), else one length byte and its UTF-8 bytes; bit 1 = the recipient is a
  digest (below). Bits 5-7 hold the format version (0).
- recipient, lower-cased: packed as a big number in base 43 over the alphabet
  ``a-z 0-9 . - _ + = @`` (an escape symbol plus two digits for any other byte), about 5.4
  bits a character instead of 8. A typical 17-digit queue id leaves room for a recipient of
  about 30 characters within the 64-octet local-part limit of RFC 5321.
- Longer recipients: an 8-byte keyed digest of the recipient instead (flag bit 1); the local
  part stays at 42 characters. :meth:`VerpCodec.decode` then returns ``recipient=None`` and
  the digest; the bounce processor finds the recipient among the events recorded for the
  queue id (``VerpAddress.matches``), or takes the one the bounce report names if it
  matches the digest.

The original sender is not in the token (it would not fit): the processor looks it up by
queue id in the events table (the scheduler records the pre-VERP sender with every event).

The secret: ``[bounces] secret_file`` or ``data_dir/verp.key``, 32 random bytes made with
mode 0600 on first use (:func:`load_or_create_secret`; safe when several workers race).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from hayate.config import BouncesConfig

PREFIX = "b-"
MAX_LOCAL = 64  # RFC 5321 4.5.3.1.1
MAC_BYTES = 6
DIGEST_BYTES = 8
SECRET_BYTES = 32

_HEX_QID = 0x01
_DIGEST = 0x02
_VERSION_MASK = 0xE0

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789.-_+=@"
_INDEX = {ch: i for i, ch in enumerate(_ALPHABET)}
_ESCAPE = len(_ALPHABET)  # followed by two digits holding one byte (0..255 < 43 * 43)
_BASE = len(_ALPHABET) + 1
_HEXDIGITS = frozenset("0123456789ABCDEF")


@dataclass(frozen=True, slots=True)
class VerpAddress:
    """What a genuine VERP address says. ``recipient`` is None when the token holds a digest
    of it (a very long recipient); use :meth:`matches` to recognise it."""

    queue_id: str
    recipient: str | None
    digest: bytes | None = None
    codec: VerpCodec | None = field(default=None, repr=False, compare=False)

    def matches(self, address: str) -> bool:
        """Is ``address`` (compared lower-cased) the recipient this token was made for?"""
        candidate = address.strip().lower()
        if self.recipient is not None:
            return candidate == self.recipient
        if self.digest is None or self.codec is None:
            return False
        return hmac.compare_digest(self.codec.digest(candidate), self.digest)


class VerpCodec:
    """Makes and checks VERP return paths under one bounce domain (implements ReturnPath)."""

    def __init__(self, domain: str, secret: bytes, *, enabled: bool = True) -> None:
        if len(secret) < 16:
            raise ValueError("the VERP secret must be at least 16 bytes")
        self.domain = domain.strip().lower().rstrip(".")
        self.enabled = enabled
        self._secret = secret

    # -- ReturnPath ---------------------------------------------------------------------

    def for_recipient(self, queue_id: str, sender: str, recipient: str) -> str | None:
        """``b-<token>@<domain>`` for one recipient; None for the null sender or VERP off."""
        if not self.enabled or not sender or not queue_id or not recipient:
            return None
        return f"{PREFIX}{self.token(queue_id, recipient)}@{self.domain}"

    # -- tokens -------------------------------------------------------------------------

    def token(self, queue_id: str, recipient: str) -> str:
        rcpt = recipient.strip().lower()
        head, qid = _pack_queue_id(queue_id)
        body = bytes([head]) + qid + _pack_recipient(rcpt)
        if len(PREFIX) + _b32_chars(MAC_BYTES + len(body)) > MAX_LOCAL:
            body = bytes([head | _DIGEST]) + qid + self.digest(rcpt)
        return _b32(self._mac(body) + body)

    def decode(self, address: str) -> VerpAddress | None:
        """The queue id and recipient of a VERP address we made; None for anything else
        (another domain, no ``b-`` prefix, bad encoding, a forged or modified token)."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.lower().rstrip(".") != self.domain:
            return None
        if not local.lower().startswith(PREFIX):
            return None
        text = local[len(PREFIX) :].lower()
        raw = _unb32(text)
        if raw is None or len(raw) < MAC_BYTES + 2 or _b32(raw) != text:
            return None  # not base32, too short, or not the one spelling we make
        mac, body = raw[:MAC_BYTES], raw[MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            return self._parse(body)
        except (ValueError, IndexError, UnicodeDecodeError):
            return None

    def _parse(self, body: bytes) -> VerpAddress:
        flags = body[0]
        if flags & _VERSION_MASK:
            raise ValueError("unknown token version")
        queue_id, rest = _unpack_queue_id(flags, body[1:])
        if flags & _DIGEST:
            if len(rest) != DIGEST_BYTES:
                raise ValueError("bad digest length")
            return VerpAddress(queue_id, None, bytes(rest), self)
        return VerpAddress(queue_id, _unpack_recipient(rest))

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, b"verp-mac\0" + body, hashlib.sha256).digest()[:MAC_BYTES]

    def digest(self, recipient: str) -> bytes:
        """The keyed digest that stands for a (lower-cased) recipient too long to carry."""
        data = b"verp-rcpt\0" + recipient.encode("utf-8")
        return hmac.new(self._secret, data, hashlib.sha256).digest()[:DIGEST_BYTES]


def _b32_chars(size: int) -> int:
    """Characters of the unpadded base32 form of ``size`` bytes."""
    return (size * 8 + 4) // 5


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes | None:
    text = text.upper()
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None


def _pack_queue_id(queue_id: str) -> tuple[int, bytes]:
    if queue_id and len(queue_id) <= 255 and set(queue_id) <= _HEXDIGITS:
        digits = queue_id if len(queue_id) % 2 == 0 else "0" + queue_id
        return _HEX_QID, bytes([len(queue_id)]) + bytes.fromhex(digits)
    raw = queue_id.encode("utf-8")
    if len(raw) > 255:
        raise ValueError("queue id too long for a VERP token")
    return 0, bytes([len(raw)]) + raw


def _unpack_queue_id(flags: int, data: bytes) -> tuple[str, bytes]:
    count = data[0]
    if flags & _HEX_QID:
        size = (count + 1) // 2
        digits = data[1 : 1 + size].hex().upper()
        if len(digits) != size * 2:
            raise ValueError("short queue id")
        return digits[len(digits) - count :], data[1 + size :]
    raw = data[1 : 1 + count]
    if len(raw) != count:
        raise ValueError("short queue id")
    return raw.decode("utf-8"), data[1 + count :]


def _pack_recipient(recipient: str) -> bytes:
    """Base-43 digits of the recipient as one number, led by a 1 so leading zeros count."""
    number = 1
    for ch in recipient:
        index = _INDEX.get(ch)
        if index is not None:
            number = number * _BASE + index
            continue
        for byte in ch.encode("utf-8"):
            number = ((number * _BASE + _ESCAPE) * _BASE + byte // _BASE) * _BASE + byte % _BASE
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def _unpack_recipient(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits: list[int] = []
    while number > 1:
        number, digit = divmod(number, _BASE)
        digits.append(digit)
    if number != 1:
        raise ValueError("bad recipient encoding")
    digits.reverse()
    out = bytearray()
    i = 0
    while i < len(digits):
        digit = digits[i]
        if digit == _ESCAPE:
            out.append(digits[i + 1] * _BASE + digits[i + 2])
            i += 3
        else:
            out += _ALPHABET[digit].encode("ascii")
            i += 1
    return out.decode("utf-8")


def codec_from_config(bounces: BouncesConfig, data_dir: Path) -> VerpCodec | None:
    """The codec for ``[bounces]`` (None without a bounce domain); makes the key if needed.

    With ``verp = false`` the codec still decodes (bounces of mail sent earlier) but
    ``for_recipient`` returns None.
    """
    if not bounces.domain:
        return None
    path = bounces.secret_file or Path(data_dir) / "verp.key"
    return VerpCodec(bounces.domain, load_or_create_secret(path), enabled=bounces.verp)


def load_or_create_secret(path: Path) -> bytes:
    """Read the VERP key, or create it (32 random bytes, mode 0600) when it does not exist.

    Creation writes a temporary file and hard-links it into place, so workers starting at
    once all end up with the same key and nobody reads a half-written file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(SECRET_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another worker won the race
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        data = path.read_bytes()
    if len(data) < 16:
        raise ValueError(f"{path}: VERP key too short ({len(data)} bytes, need 16 or more)")
    return data
