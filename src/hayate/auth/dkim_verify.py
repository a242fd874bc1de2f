"""DKIM verification of received mail (RFC 6376, RFC 8463) with every key fetched asynchronously.

``verify_dkim`` finds the DKIM-Signature fields of a message (the first ``max_signatures``
from the top), fetches each ``<s>._domainkey.<d>`` TXT record through the cached async
resolver (all at once, no blocking DNS on the event loop), checks the key records, and then
lets dkimpy verify each signature against the record already in memory (its ``dnsfunc``
hook never touches the network). dkimpy's own RSA is pure Python, which is acceptable for
verifying (public exponent 65537: ~0.5 ms for a 2 KB message) but not for signing.

Results, as RFC 8601 names them:

- ``temperror``: the key lookup failed temporarily (SERVFAIL, time-out);
- ``permerror``: no key record (NXDOMAIN, no TXT), a key record that cannot be used (bad
  syntax, revoked with an empty p=, wrong key type, key too small), a signature with missing
  or bad tags, or rsa-sha1 (RFC 8301);
- ``fail``: the body hash or the signature does not match, or the signature has expired;
- ``pass``.

:func:`fetch_key_records` is shared with the ARC verifier.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

import dkim  # type: ignore[import-untyped, unused-ignore]
from dkim.util import (  # type: ignore[import-untyped, unused-ignore]
    InvalidTagValueList,
    parse_tag_value,
)

from hayate.auth.canon import field_name, field_value, header_fields, split_message, to_crlf
from hayate.auth.verdicts import DkimVerdict
from hayate.core.seams import DnsError, TxtResolver

log = logging.getLogger("hayate.dkim")

_KEY_TYPES = {"rsa-sha256": b"rsa", "ed25519-sha256": b"ed25519"}
_WSP = re.compile(rb"\s+")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """The outcome of one key lookup: the usable record, or why there is none."""

    record: bytes = b""  # the TXT record to hand to dkimpy
    key_type: bytes = b""  # k= ("rsa" when absent)
    error: str = ""  # "" when the record is usable
    temporary: bool = False  # the error is a temporary DNS failure


def _check_record(name: str, records: list[str]) -> KeyRecord:
    """Pick the first TXT record that is a DKIM key; say why none is usable otherwise."""
    problem = "no DKIM key record"
    for text in records:
        raw = text.encode("utf-8", "replace")
        try:
            tags = parse_tag_value(_WSP.sub(b"", raw).replace(b";", b"; "))
        except InvalidTagValueList:
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
        hashes = tags.get(b"h")
        if hashes is not None and b"sha256" not in hashes.split(b":"):
            return KeyRecord(error="key does not allow sha256 (h= tag)")
        try:
            dkim.evaluate_pk(name.encode("ascii", "replace"), raw)
        except (dkim.DKIMException, binascii.Error, ValueError, TypeError) as exc:
            return KeyRecord(error=f"unusable key: {exc}")
        return KeyRecord(record=raw, key_type=tags.get(b"k", b"rsa"))
    return KeyRecord(error=problem)


async def _fetch_one(resolver: TxtResolver, name: str) -> KeyRecord:
    try:
        records = await resolver.resolve_txt(name)
    except DnsError as exc:
        if exc.temporary:
            return KeyRecord(error=f"key lookup failed: {exc}", temporary=True)
        return KeyRecord(error="no key for signature (NXDOMAIN)")
    return _check_record(name, records)


async def fetch_key_records(
    resolver: TxtResolver, names: Iterable[str]
) -> dict[str, KeyRecord]:
    """Look up every key record name at once (lower case, no trailing dot)."""
    unique = sorted({n.lower().rstrip(".") for n in names})
    found = await asyncio.gather(*(_fetch_one(resolver, n) for n in unique))
    return dict(zip(unique, found, strict=True))


def dnsfunc_for(keys: dict[str, KeyRecord]) -> object:
    """A dkimpy ``dnsfunc`` answering from prefetched records (b"" when there is none)."""

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        return keys.get(name.decode("ascii", "replace").lower().rstrip("."), KeyRecord()).record

    return dnsfunc


@dataclass(frozen=True, slots=True)
class _Sig:
    index: int
    tags: dict[bytes, bytes] | None
    error: str = ""

    def tag(self, name: bytes) -> str:
        value = (self.tags or {}).get(name, b"")
        return value.decode("ascii", "replace")

    @property
    def key_name(self) -> str:
        return f"{self.tag(b's')}._domainkey.{self.tag(b'd')}".lower()


def _signatures(message: bytes, limit: int) -> list[_Sig]:
    head, _ = split_message(message)
    sigs: list[_Sig] = []
    for fld in header_fields(head):
        if field_name(fld) != b"dkim-signature":
            continue
        if len(sigs) == limit:
            break
        try:
            sigs.append(_Sig(len(sigs), parse_tag_value(field_value(fld))))
        except InvalidTagValueList as exc:
            sigs.append(_Sig(len(sigs), None, f"bad signature syntax: {exc!r}"))
    return sigs


def _precheck(sig: _Sig) -> str:
    """A reason for permerror found before any DNS lookup, or ''."""
    if sig.tags is None:
        return sig.error
    for tag in (b"v", b"a", b"b", b"bh", b"d", b"h", b"s"):
        if tag not in sig.tags:
            return f"missing {tag.decode()}= tag"
    algorithm = sig.tag(b"a").lower()
    if algorithm == "rsa-sha1":
        return "rsa-sha1 is not accepted (RFC 8301)"
    if algorithm not in _KEY_TYPES:
        return f"unknown algorithm {algorithm!r}"
    signed = [h.strip().lower() for h in sig.tag(b"h").split(":")]
    if "from" not in signed:
        return "From is not signed"
    return ""


def _verdict(sig: _Sig, result: str, reason: str = "") -> DkimVerdict:
    b_value = _WSP.sub(b"", (sig.tags or {}).get(b"b", b"")).decode("ascii", "replace")
    return DkimVerdict(
        result=result,
        domain=sig.tag(b"d").lower(),
        selector=sig.tag(b"s"),
        algorithm=sig.tag(b"a").lower(),
        reason=reason,
        b_prefix=b_value[:8],
    )


def _run_dkimpy(checker: dkim.DKIM, sig: _Sig, dnsfunc: object) -> tuple[str, str]:
    try:
        ok = checker.verify(idx=sig.index, dnsfunc=dnsfunc)
    except dkim.ValidationError as exc:
        text = str(exc)
        if "body hash mismatch" in text:
            return "fail", "body hash did not verify"
        if "x= value is past" in text:
            return "fail", "signature expired"
        return "permerror", text
    except dkim.DKIMException as exc:
        return "permerror", str(exc)
    except (ValueError, TypeError, IndexError, KeyError, binascii.Error) as exc:
        return "permerror", f"cannot verify: {exc!r}"
    return ("pass", "") if ok else ("fail", "signature did not verify")


async def verify_dkim(
    message: bytes, resolver: TxtResolver, *, max_signatures: int = 5
) -> list[DkimVerdict]:
    """One verdict per DKIM-Signature (top first, at most ``max_signatures``); [] if none."""
    message = to_crlf(message)
    sigs = _signatures(message, max_signatures)
    if not sigs:
        return []
    problems = {s.index: _precheck(s) for s in sigs}
    keys = await fetch_key_records(
        resolver, (s.key_name for s in sigs if not problems[s.index])
    )
    dnsfunc = dnsfunc_for(keys)
    checker: dkim.DKIM | None = None
    verdicts = []
    for sig in sigs:
        if problems[sig.index]:
            verdicts.append(_verdict(sig, "permerror", problems[sig.index]))
            continue
        key = keys[sig.key_name]
        if key.error:
            verdicts.append(_verdict(sig, "temperror" if key.temporary else "permerror", key.error))
            continue
        if key.key_type != _KEY_TYPES[sig.tag(b"a").lower()]:
            verdicts.append(_verdict(sig, "permerror", "key type does not match a="))
            continue
        if checker is None:
            checker = dkim.DKIM(message, minkey=1024)
        result, reason = _run_dkimpy(checker, sig, dnsfunc)
        verdicts.append(_verdict(sig, result, reason))
    return verdicts

