"""DKIM key records (RFC 6376 3.6.1, RFC 8463): fetched asynchronously, checked, loaded.

:func:`fetch_key_records` looks up every ``<s>._domainkey.<d>`` name of a message at once
through the cached async resolver and turns each answer into a :class:`KeyRecord`: the
public key loaded with ``cryptography``, or why there is none. Of several TXT strings the
first that is a DKIM key counts. A record is refused (``error`` set) when:

- the lookup failed temporarily (``temporary``: the signature is "temperror");
- there is no record (NXDOMAIN, no TXT, no p= tag, bad syntax, v= other than DKIM1);
- the key is revoked (empty p=), its h= does not allow sha256, its s= does not allow email,
  k= is unknown, p= does not decode to a key of that type, or an RSA key has fewer than
  1024 bits (RFC 8301).

The flags of t= are kept: ``testing`` (y: the domain is testing DKIM) and
``strict_identity`` (s: i= must be in d= itself, not in a subdomain). The outcome for a
given set of TXT strings is cached (they come back from the DNS cache for every message).
The DKIM and the ARC verifiers share it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from hayate.auth.dkim_tags import TagListError, parse_tags
from hayate.core.seams import DnsError, TxtResolver

MIN_RSA_BITS = 1024  # RFC 8301 3.2: smaller keys MUST NOT be accepted
_CACHED_RECORD_CHARS = 2048  # an rsa-4096 record is about 750 characters
_WSP = re.compile(rb"\s+")

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """The outcome of one key lookup: the usable record, or why there is none."""

    key_type: bytes = b""  # k= ("rsa" when absent)
    error: str = ""  # "" when the record is usable
    temporary: bool = False  # the error is a temporary DNS failure
    public_key: PublicKey | None = None
    testing: bool = False  # t=y
    strict_identity: bool = False  # t=s


def _load_key(key_type: bytes, p_value: bytes) -> PublicKey | str:
    """The public key of a p= value, or why it cannot be used."""
    try:
        data = base64.b64decode(p_value, validate=True)
    except (binascii.Error, ValueError):
        return "unusable key: p= is not valid base64"
    if key_type == b"ed25519":
        if len(data) != 32:
            return f"unusable key: an ed25519 key has 32 bytes, not {len(data)}"
        try:
            return ed25519.Ed25519PublicKey.from_public_bytes(data)
        except ValueError as exc:
            return f"unusable key: bad ed25519 key ({exc})"
    if key_type != b"rsa":
        return f"unusable key: unknown key type k={key_type.decode('ascii', 'replace')[:20]}"
    try:
        key = load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"unusable key: not an RSA public key ({exc})"
    if not isinstance(key, rsa.RSAPublicKey):
        return "unusable key: not an RSA public key"
    if key.key_size < MIN_RSA_BITS:
        return f"key too small ({key.key_size} bits)"
    return key


def _flags(tags: dict[bytes, bytes], name: bytes) -> set[bytes]:
    return {f for f in tags.get(name, b"").lower().split(b":") if f}


def check_record(records: list[str]) -> KeyRecord:
    """Pick the first TXT record that is a DKIM key; say why none is usable otherwise.
    The same records come back from the DNS cache again and again, so the outcome is
    cached too (key-sized records only: the cache's memory stays small)."""
    if sum(map(len, records)) > _CACHED_RECORD_CHARS:
        return _check_record.__wrapped__(tuple(records))
    return _check_record(tuple(records))


@functools.lru_cache(maxsize=1024)
def _check_record(records: tuple[str, ...]) -> KeyRecord:
    problem = "no DKIM key record"
    for text in records:
        raw = text.encode("utf-8", "replace")
        try:
            tags = parse_tags(_WSP.sub(b"", raw))
        except TagListError:
            problem = "key record has bad syntax"
            continue
        if b"p" not in tags:
            problem = "key record has no p= tag"
            continue
        if tags.get(b"v", b"DKIM1") != b"DKIM1":
            problem = "key record version is not DKIM1"
            continue
        if not tags[b"p"]:
            return KeyRecord(error="key revoked (empty p=)")
        hashes = _flags(tags, b"h")
        if hashes and b"sha256" not in hashes:
            return KeyRecord(error="key does not allow sha256 (h= tag)")
        services = _flags(tags, b"s")
        if services and not services & {b"*", b"email"}:
            return KeyRecord(error="key is not for email (s= tag)")
        key_type = tags.get(b"k", b"rsa").lower()
        key = _load_key(key_type, tags[b"p"])
        if isinstance(key, str):
            return KeyRecord(error=key)
        flags = _flags(tags, b"t")
        return KeyRecord(key_type, public_key=key, testing=b"y" in flags,
                         strict_identity=b"s" in flags)
    return KeyRecord(error=problem)


async def _fetch_one(resolver: TxtResolver, name: str) -> KeyRecord:
    try:
        records = await resolver.resolve_txt(name)
    except DnsError as exc:
        if exc.temporary:
            return KeyRecord(error=f"key lookup failed: {exc}", temporary=True)
        return KeyRecord(error="no key for signature (NXDOMAIN)")
    return check_record(records)


async def fetch_key_records(
    resolver: TxtResolver, names: Iterable[str]
) -> dict[str, KeyRecord]:
    """Look up every key record name at once (lower case, no trailing dot)."""
    unique = sorted({n.lower().rstrip(".") for n in names})
    if len(unique) == 1:  # the usual case: no tasks to create and schedule
        return {unique[0]: await _fetch_one(resolver, unique[0])}
    found = await asyncio.gather(*(_fetch_one(resolver, n) for n in unique))
    return dict(zip(unique, found, strict=True))

