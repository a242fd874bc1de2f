"""One DKIM-Signature field read and checked before any key is fetched (RFC 6376 3.5, 6.1.1).

:func:`parse_signature` takes the tags of the field (see :mod:`hayate.auth.dkim_tags`) and
returns a :class:`DkimSignature` with every value decoded, or raises :class:`SignatureError`
with the RFC 8601 result and a reason:

- ``permerror`` for a signature that cannot be processed: a missing required tag (v a b bh
  d h s), v= not 1, rsa-sha1 (RFC 8301) or an unknown a=, an unknown c=, b= or bh= not
  base64, a d= or s= that is not a domain name, an h= without From or with an empty name,
  an i= whose domain is neither d= nor below it, l= t= x= that are not numbers, a q= without
  dns/txt, x= not later than t=, or t= later than now plus ``clock_skew``;
- ``fail`` for an expired signature (x= earlier than now minus ``clock_skew``).

Tags not named here (z= copied headers, unknown tags) are ignored, as RFC 6376 3.2 says.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
CANONICALIZATIONS = ("simple", "relaxed")
_REQUIRED = (b"v", b"a", b"b", b"bh", b"d", b"h", b"s")
_WSP = re.compile(rb"[ \t\r\n]+")
_LABEL = rb"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_NAME = re.compile(_LABEL + rb"(?:\." + _LABEL + rb")*\.?")
_FIELD_NAME = re.compile(rb"[!-9;-~]+")  # printable US-ASCII except ":" (RFC 5322 ftext)
_NUMBER = re.compile(rb"[0-9]{1,76}")


class SignatureError(Exception):
    """The signature cannot pass: ``result`` is "permerror" or "fail"."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DkimSignature:
    """The decoded tags of one DKIM-Signature field."""

    algorithm: str  # "rsa-sha256" | "ed25519-sha256"
    signature: bytes  # b=, decoded
    body_hash: bytes  # bh=, decoded
    header_canon: str  # "simple" | "relaxed"
    body_canon: str  # "simple" | "relaxed"
    domain: str  # d=, lower case, no trailing dot
    selector: str  # s=, lower case
    headers: tuple[bytes, ...]  # h=, lower-case names in order
    identity_domain: str  # the domain of i= (lower case); d= when there is no i=
    length: int | None = None  # l=: how many octets of the canonical body are signed
    timestamp: int | None = None  # t=
    expires: int | None = None  # x=

    @property
    def key_name(self) -> str:
        """The TXT record holding the key: ``<s>._domainkey.<d>``."""
        return f"{self.selector}._domainkey.{self.domain}"


def _permerror(reason: str) -> SignatureError:
    return SignatureError("permerror", reason)


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace")


def _base64(tags: dict[bytes, bytes], name: bytes) -> bytes:
    data = _WSP.sub(b"", tags[name])
    try:
        decoded = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise _permerror(f"{name.decode()}= is not valid base64") from exc
    if not decoded:
        raise _permerror(f"{name.decode()}= is empty")
    return decoded


def _domain_name(tags: dict[bytes, bytes], name: bytes) -> str:
    value = tags[name]
    if len(value) > 253 or _NAME.fullmatch(value) is None:
        raise _permerror(f"{name.decode()}= is not a domain name: {_text(value[:60])!r}")
    return _text(value).lower().rstrip(".")


def _number(tags: dict[bytes, bytes], name: bytes) -> int | None:
    value = tags.get(name)
    if value is None:
        return None
    if _NUMBER.fullmatch(value) is None:
        raise _permerror(f"{name.decode()}= is not a number")
    return int(value)


def _canonicalization(tags: dict[bytes, bytes]) -> tuple[str, str]:
    value = _text(tags.get(b"c", b"simple/simple")).lower()
    header, _, body = value.partition("/")
    body = body or "simple"
    if header not in CANONICALIZATIONS or body not in CANONICALIZATIONS or value.count("/") > 1:
        raise _permerror(f"unknown canonicalization c={value!r}")
    return header, body


def _signed_headers(tags: dict[bytes, bytes]) -> tuple[bytes, ...]:
    names = tuple(n.strip(b" \t\r\n").lower() for n in tags[b"h"].split(b":"))
    if not all(_FIELD_NAME.fullmatch(n) for n in names):
        raise _permerror("h= has an empty or malformed header name")
    if b"from" not in names:
        raise _permerror("From is not signed")
    return names


def _identity_domain(tags: dict[bytes, bytes], domain: str) -> str:
    value = tags.get(b"i")
    if value is None:
        return domain
    _, at, host = _text(value).rpartition("@")
    host = host.lower().rstrip(".")
    if not at or not host:
        raise _permerror("i= is not an address")
    if host != domain and not host.endswith("." + domain):
        raise _permerror(f"i= domain {host!r} is not d= or a subdomain of it")
    return host


def _check_query(tags: dict[bytes, bytes]) -> None:
    value = tags.get(b"q")
    if value is None:
        return
    methods = {m.strip(b" \t\r\n").lower() for m in value.split(b":")}
    if b"dns/txt" not in methods:
        raise _permerror(f"no known query method in q={_text(value[:40])!r}")


def parse_signature(tags: dict[bytes, bytes], now: float, clock_skew: float) -> DkimSignature:
    """The decoded signature, or :class:`SignatureError` (see the module docstring)."""
    for name in _REQUIRED:
        if name not in tags:
            raise _permerror(f"missing {name.decode()}= tag")
    if tags[b"v"] != b"1":
        raise _permerror(f"v= is not 1: {_text(tags[b'v'][:20])!r}")
    algorithm = _text(tags[b"a"]).lower()
    if algorithm == "rsa-sha1":
        raise _permerror("rsa-sha1 is not accepted (RFC 8301)")
    if algorithm not in ALGORITHMS:
        raise _permerror(f"unknown algorithm {algorithm[:30]!r}")
    header_canon, body_canon = _canonicalization(tags)
    domain = _domain_name(tags, b"d")
    selector = _domain_name(tags, b"s")
    headers = _signed_headers(tags)
    identity = _identity_domain(tags, domain)
    _check_query(tags)
    length = _number(tags, b"l")
    timestamp = _number(tags, b"t")
    expires = _number(tags, b"x")
    signature = _base64(tags, b"b")
    body_hash = _base64(tags, b"bh")
    if timestamp is not None and expires is not None and expires <= timestamp:
        raise _permerror("x= is not later than t=")
    if timestamp is not None and timestamp > now + clock_skew:
        raise _permerror("t= is in the future")
    if expires is not None and expires < now - clock_skew:
        raise SignatureError("fail", "signature expired")
    return DkimSignature(
        algorithm=algorithm,
        signature=signature,
        body_hash=body_hash,
        header_canon=header_canon,
        body_canon=body_canon,
        domain=domain,
        selector=selector,
        headers=headers,
        identity_domain=identity,
        length=length,
        timestamp=timestamp,
        expires=expires,
    )
