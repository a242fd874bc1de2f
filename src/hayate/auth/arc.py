"""ARC chain validation (RFC 8617) with the sealers' keys fetched asynchronously.

``verify_arc`` reads the ARC-Seal and ARC-Message-Signature fields of a message, fetches
every key they name through the cached async resolver at once, and lets dkimpy's ARC
validator check the chain against those records in memory (no DNS from inside dkimpy).

The result is an :class:`ArcVerdict`: ``none`` (no ARC sets), ``pass`` (every seal and the
newest message signature verify and the chain is well formed), or ``fail`` with a reason.
A key that cannot be fetched because of a temporary DNS failure makes the chain ``fail``
too (ARC has no temperror result); the reason then starts with "temporary:" so that a
caller can tell it apart. Only the newest sealer (``sealer``, d= of the ARC-Seal with the
highest i=) matters for trusting a chain (``[auth] trusted_arc_sealers``).
"""

from __future__ import annotations

import logging

import dkim  # type: ignore[import-untyped, unused-ignore]
from dkim.util import (  # type: ignore[import-untyped, unused-ignore]
    InvalidTagValueList,
    parse_tag_value,
)

from hayate.auth.canon import field_name, field_value, header_fields, split_message, to_crlf
from hayate.auth.dkim_verify import dnsfunc_for, fetch_key_records
from hayate.auth.verdicts import ArcVerdict
from hayate.core.seams import TxtResolver

log = logging.getLogger("hayate.arc")

MAX_INSTANCE = 50  # RFC 8617 4.2.1: i= goes from 1 to 50
_SEALS = (b"arc-seal", b"arc-message-signature")
_ARC = (*_SEALS, b"arc-authentication-results")


def _tags(fld: bytes) -> dict[bytes, bytes] | None:
    try:
        tags: dict[bytes, bytes] = parse_tag_value(field_value(fld))
    except InvalidTagValueList:
        return None
    return tags


async def verify_arc(message: bytes, resolver: TxtResolver) -> ArcVerdict:
    """Validate the ARC chain of ``message``; "none" when it has no ARC headers."""
    message = to_crlf(message)
    head, _ = split_message(message)
    seals: list[tuple[bytes, dict[bytes, bytes]]] = []
    any_arc = False
    for fld in header_fields(head):
        name = field_name(fld)
        if name not in _ARC:
            continue
        any_arc = True
        if name in _SEALS:
            tags = _tags(fld)
            if tags is None:
                return ArcVerdict("fail", reason=f"bad {name.decode()} syntax")
            seals.append((name, tags))
    if not any_arc:
        return ArcVerdict("none")

    newest, sealer = 0, ""
    for name, tags in seals:
        try:
            instance = int(tags.get(b"i", b""))
        except ValueError:
            return ArcVerdict("fail", reason="bad i= tag")
        if not 1 <= instance <= MAX_INSTANCE:
            return ArcVerdict("fail", reason=f"i={instance} out of range")
        if name == b"arc-seal" and instance > newest:
            newest, sealer = instance, tags.get(b"d", b"").decode("ascii", "replace").lower()

    names = [
        f"{tags.get(b's', b'').decode('ascii', 'replace')}._domainkey."
        f"{tags.get(b'd', b'').decode('ascii', 'replace')}"
        for _, tags in seals
    ]
    keys = await fetch_key_records(resolver, names)
    temporary = sorted(n for n, k in keys.items() if k.temporary)
    if temporary:
        reason = f"temporary: key lookup failed for {temporary[0]}"
        return ArcVerdict("fail", newest, sealer, reason)

    try:
        cv, _, reason = dkim.ARC(message, minkey=1024).verify(dnsfunc=dnsfunc_for(keys))
    except dkim.DKIMException as exc:
        return ArcVerdict("fail", newest, sealer, str(exc))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        return ArcVerdict("fail", newest, sealer, f"cannot validate: {exc!r}")
    if cv == dkim.CV_Pass:
        return ArcVerdict("pass", newest, sealer)
    if cv == dkim.CV_None:  # ARC-Authentication-Results alone, without seals
        return ArcVerdict("fail", newest, sealer, "incomplete ARC set")
    text = reason if isinstance(reason, str) else str(reason)
    return ArcVerdict("fail", newest, sealer, text)
