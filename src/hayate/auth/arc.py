"""ARC chain validation (RFC 8617 5.2) with the sealers' keys fetched asynchronously.

``verify_arc`` collects the ARC sets of a message and checks the chain's shape
(:mod:`hayate.auth.arc_chain`: instances 1..n without gaps, one field of each kind per
instance, cv= none then pass), reads the newest ARC-Message-Signature and every ARC-Seal
(:mod:`hayate.auth.arc_seal`), fetches the keys they name through the cached async resolver
at once, then verifies the newest message signature like a DKIM signature and every seal,
newest first, with our own canonicalization and ``cryptography`` (no dkimpy). Older message
signatures are not checked (RFC 8617 5.2 step 5 makes that optional).

The result is an :class:`ArcVerdict`: ``none`` (no ARC fields), ``pass`` (every seal and the
newest message signature verify and the chain is well formed), or ``fail`` with a reason.
A key that cannot be fetched because of a temporary DNS failure makes the chain ``fail``
too (ARC has no temperror result); the reason then starts with "temporary:" so that a
caller can tell it apart. Only the newest sealer (``sealer``, d= of the ARC-Seal with the
highest i=) matters for trusting a chain (``[auth] trusted_arc_sealers``). Nothing in a
message makes ``verify_arc`` raise.
"""

from __future__ import annotations

import logging
import time

from hayate.auth.arc_chain import SEAL, ArcSet, ChainError, arc_fields, build_chain
from hayate.auth.arc_seal import check_seal, parse_message_signature, parse_seal
from hayate.auth.canon import to_crlf
from hayate.auth.dkim_check import SignedMessage, check_signature
from hayate.auth.dkim_keyrecord import KeyRecord, PublicKey, fetch_key_records
from hayate.auth.dkim_signature import SignatureError
from hayate.auth.dkim_verify import CLOCK_SKEW
from hayate.auth.verdicts import ArcVerdict
from hayate.core.seams import TxtResolver

log = logging.getLogger("hayate.arc")

_KEY_TYPES = {"rsa-sha256": b"rsa", "ed25519-sha256": b"ed25519"}


class _Broken(Exception):
    """The chain fails for ``reason`` (a signature or key problem)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _usable_key(key: KeyRecord, key_name: str, algorithm: str, what: str) -> PublicKey:
    if key.temporary:
        raise _Broken(f"temporary: key lookup failed for {key_name}")
    if key.error:
        raise _Broken(f"{what}: {key.error}")
    if key.key_type != _KEY_TYPES[algorithm] or key.public_key is None:
        raise _Broken(f"{what}: key type does not match a=")
    return key.public_key


async def _verify_signatures(
    message: SignedMessage, sets: list[ArcSet], resolver: TxtResolver, now: float
) -> None:
    """Raise :class:`_Broken` unless the newest message signature and every seal verify."""
    newest = sets[-1]
    ams_name = f"ARC-Message-Signature[{newest.instance}]"
    try:
        ams = parse_message_signature(newest.signature.tags, now, CLOCK_SKEW)
    except SignatureError as exc:
        raise _Broken(f"{ams_name}: {exc.reason}") from exc
    seals = []
    for arc_set in sets:
        try:
            seals.append(parse_seal(arc_set.seal.tags))
        except SignatureError as exc:
            raise _Broken(f"ARC-Seal[{arc_set.instance}]: {exc.reason}") from exc
    keys = await fetch_key_records(resolver, [ams.key_name, *(s.key_name for s in seals)])

    key = _usable_key(keys[ams.key_name], ams.key_name, ams.algorithm, ams_name)
    result, reason = check_signature(message, newest.signature.position, ams, key)
    if result != "pass":
        raise _Broken(f"{ams_name}: {reason}")
    for count in range(len(sets), 0, -1):
        seal = seals[count - 1]
        what = f"ARC-Seal[{count}]"
        key = _usable_key(keys[seal.key_name], seal.key_name, seal.algorithm, what)
        if not check_seal(message, sets[:count], seal, key):
            raise _Broken(f"{what}: signature did not verify")


async def verify_arc(
    message: bytes, resolver: TxtResolver, *, now: float | None = None
) -> ArcVerdict:
    """Validate the ARC chain of ``message``; "none" when it has no ARC fields."""
    parsed = SignedMessage(to_crlf(message))
    try:
        found = arc_fields(parsed.fields)
    except ChainError as exc:
        return ArcVerdict("fail", reason=exc.reason)
    if not found:
        return ArcVerdict("none")
    seals = [f for f in found if f.name == SEAL]
    newest = max(seals, key=lambda f: f.instance, default=None)
    instance = newest.instance if newest else 0
    sealer = newest.tags.get(b"d", b"").decode("ascii", "replace").lower() if newest else ""
    try:
        sets = build_chain(found)
        await _verify_signatures(parsed, sets, resolver, time.time() if now is None else now)
    except (ChainError, _Broken) as exc:
        return ArcVerdict("fail", instance, sealer, exc.reason)
    except Exception as exc:  # a message must never break the checks; see the log
        log.exception("ARC validation failed unexpectedly")
        return ArcVerdict("fail", instance, sealer, f"cannot validate: {exc!r}")
    return ArcVerdict("pass", instance, sealer)
