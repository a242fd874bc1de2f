"""DKIM verification of received mail (RFC 6376, RFC 8463) with every key fetched asynchronously.

``verify_dkim`` finds the DKIM-Signature fields of a message (the first ``max_signatures``
from the top), reads and checks each one's tags (:mod:`hayate.auth.dkim_signature`), fetches
the ``<s>._domainkey.<d>`` TXT records of those that can be checked through the cached async
resolver (all at once, no blocking DNS on the event loop; :mod:`hayate.auth.dkim_keyrecord`),
and verifies each signature itself (:mod:`hayate.auth.dkim_check`): our canonicalization
(simple and relaxed), hashes from ``hashlib``, RSA and Ed25519 from ``cryptography``.
dkimpy is not involved (its RSA is pure Python: ~0.5 ms per 2 KB message).

Results, as RFC 8601 names them:

- ``temperror``: the key lookup failed temporarily (SERVFAIL, time-out);
- ``permerror``: no key record (NXDOMAIN, no TXT), a key record that cannot be used (bad
  syntax, revoked with an empty p=, wrong key type, an RSA key under 1024 bits, h= without
  sha256, s= without email), a signature with missing or bad tags, or rsa-sha1 (RFC 8301),
  a t= in the future (beyond ``clock_skew``), or an i= outside d= when the key has t=s;
- ``fail``: the body hash or the signature does not match, an unsigned From field, a body
  shorter than l=, or the signature has expired (x= before now minus ``clock_skew``);
- ``neutral``: a signature that would be a "fail" but whose key is in testing mode (t=y),
  which RFC 6376 3.6.1 says must be treated like unsigned mail;
- ``pass``.

Nothing in a message makes ``verify_dkim`` raise: a signature that breaks the checks in an
unforeseen way is logged and recorded as "permerror". :func:`fetch_key_records` is shared
with the ARC verifier.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from hayate.auth.canon import field_value, to_crlf
from hayate.auth.dkim_check import SIGNATURE_FIELD, SignedMessage, check_signature
from hayate.auth.dkim_keyrecord import KeyRecord, fetch_key_records
from hayate.auth.dkim_signature import DkimSignature, SignatureError, parse_signature
from hayate.auth.dkim_tags import TagListError, parse_tags
from hayate.auth.verdicts import DkimVerdict
from hayate.core.seams import TxtResolver

__all__ = ["CLOCK_SKEW", "KeyRecord", "fetch_key_records", "verify_dkim"]

log = logging.getLogger("hayate.dkim")

CLOCK_SKEW = 3600.0  # seconds of clock difference allowed for t= and x=
_KEY_TYPES = {"rsa-sha256": b"rsa", "ed25519-sha256": b"ed25519"}
_WSP = re.compile(rb"\s+")


@dataclass(frozen=True, slots=True)
class _Candidate:
    """One DKIM-Signature field: its raw tags, the decoded signature, or why it has none."""

    position: int  # index of the field in SignedMessage.fields
    tags: dict[bytes, bytes]
    sig: DkimSignature | None
    result: str = ""  # set when the signature is refused before any DNS lookup
    reason: str = ""


def _candidate(message: SignedMessage, position: int, now: float, skew: float) -> _Candidate:
    try:
        tags = parse_tags(field_value(message.fields[position]))
    except TagListError as exc:
        return _Candidate(position, {}, None, "permerror", f"bad signature syntax: {exc}")
    try:
        return _Candidate(position, tags, parse_signature(tags, now, skew))
    except SignatureError as exc:
        return _Candidate(position, tags, None, exc.result, exc.reason)


def _verdict(candidate: _Candidate, result: str, reason: str = "") -> DkimVerdict:
    def tag(name: bytes) -> str:
        return candidate.tags.get(name, b"").decode("ascii", "replace")

    b_value = _WSP.sub(b"", candidate.tags.get(b"b", b"")).decode("ascii", "replace")
    return DkimVerdict(
        result=result,
        domain=tag(b"d").lower(),
        selector=tag(b"s"),
        algorithm=tag(b"a").lower(),
        reason=reason,
        b_prefix=b_value[:8],
    )


def _check(message: SignedMessage, candidate: _Candidate, key: KeyRecord) -> tuple[str, str]:
    """The result of a signature whose tags are good and whose key lookup is done."""
    sig = candidate.sig
    assert sig is not None
    if key.error:
        return ("temperror" if key.temporary else "permerror"), key.error
    if key.key_type != _KEY_TYPES[sig.algorithm] or key.public_key is None:
        return "permerror", "key type does not match a="
    if key.strict_identity and sig.identity_domain != sig.domain:
        return "permerror", "the key requires the i= domain to be d= itself (t=s)"
    result, reason = check_signature(message, candidate.position, sig, key.public_key)
    if result == "fail" and key.testing:
        return "neutral", f"{reason}; the key is in testing mode (t=y)"
    return result, reason


async def verify_dkim(
    message: bytes,
    resolver: TxtResolver,
    *,
    max_signatures: int = 5,
    now: float | None = None,
    clock_skew: float = CLOCK_SKEW,
) -> list[DkimVerdict]:
    """One verdict per DKIM-Signature (top first, at most ``max_signatures``); [] if none."""
    parsed = SignedMessage(to_crlf(message))
    positions = parsed.positions(SIGNATURE_FIELD)[:max_signatures]
    if not positions:
        return []
    when = time.time() if now is None else now
    candidates = [_candidate(parsed, p, when, clock_skew) for p in positions]
    keys = await fetch_key_records(
        resolver, (c.sig.key_name for c in candidates if c.sig is not None)
    )
    verdicts = []
    for candidate in candidates:
        if candidate.sig is None:
            verdicts.append(_verdict(candidate, candidate.result, candidate.reason))
            continue
        try:
            result, reason = _check(parsed, candidate, keys[candidate.sig.key_name])
        except Exception as exc:  # a message must never break the checks; see the log
            log.exception("DKIM check of %s failed unexpectedly", candidate.sig.key_name)
            result, reason = "permerror", f"cannot verify: {exc!r}"
        verdicts.append(_verdict(candidate, result, reason))
    return verdicts
