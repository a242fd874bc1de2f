"""The ARC sets of a message, collected and checked for form before any key is fetched
(RFC 8617 4.1, 4.2.1, 5.2 steps 1-3).

:func:`arc_fields` finds the ARC-Authentication-Results, ARC-Message-Signature and ARC-Seal
fields of a message and reads each one's instance: the i= tag of the seal and the message
signature (whose values are tag lists, see :mod:`hayate.auth.dkim_tags`), the leading
``i=N;`` of the authentication results. :func:`build_chain` groups them into one
:class:`ArcSet` per instance and checks the chain's shape:

- every instance from 1 to the highest (at most 50) has exactly one field of each kind;
- the newest seal does not say cv=fail (the chain was already broken when it was sealed),
  nor does any older one;
- the seal of instance 1 says cv=none, every later one cv=pass.

Both raise :class:`ChainError` with the reason the chain fails. Nothing is verified here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hayate.auth.canon import field_name, field_value
from hayate.auth.dkim_tags import TagListError, parse_tags

MAX_INSTANCE = 50  # RFC 8617 4.2.1: i= goes from 1 to 50
AAR = b"arc-authentication-results"
AMS = b"arc-message-signature"
SEAL = b"arc-seal"
ARC_FIELDS = (AAR, AMS, SEAL)
SHOWN = {AAR: "ARC-Authentication-Results", AMS: "ARC-Message-Signature", SEAL: "ARC-Seal"}
_AAR_INSTANCE = re.compile(rb"[ \t\r\n]*i[ \t\r\n]*=[ \t\r\n]*([0-9]{1,4})[ \t\r\n]*;")
_INSTANCE = re.compile(rb"[0-9]{1,4}")


class ChainError(Exception):
    """The chain fails for ``reason`` before any signature is checked."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ArcField:
    """One ARC header field: its kind, where it is, its instance and (seal and message
    signature only) its tags."""

    name: bytes  # AAR | AMS | SEAL
    position: int  # index among the message's header fields
    instance: int
    tags: dict[bytes, bytes]  # {} for AAR


@dataclass(frozen=True, slots=True)
class ArcSet:
    """The three fields of one instance."""

    instance: int
    results: ArcField  # ARC-Authentication-Results
    signature: ArcField  # ARC-Message-Signature
    seal: ArcField  # ARC-Seal


def _instance(name: bytes, value: bytes, tags: dict[bytes, bytes]) -> int:
    if name == AAR:
        found = _AAR_INSTANCE.match(value)
        raw = found.group(1) if found else None
    else:
        raw = tags.get(b"i")
        if raw is not None and _INSTANCE.fullmatch(raw) is None:
            raw = None
    if raw is None:
        raise ChainError(f"{SHOWN[name]} has no valid i= tag")
    instance = int(raw)
    if not 1 <= instance <= MAX_INSTANCE:
        raise ChainError(f"{SHOWN[name]} has i={instance}, outside 1-{MAX_INSTANCE}")
    return instance


def arc_fields(fields: list[bytes]) -> list[ArcField]:
    """The ARC fields among ``fields`` (a message's header fields, top first)."""
    found = []
    for position, fld in enumerate(fields):
        name = field_name(fld)
        if name not in ARC_FIELDS:
            continue
        value = field_value(fld)
        tags: dict[bytes, bytes] = {}
        if name != AAR:
            try:
                tags = parse_tags(value)
            except TagListError as exc:
                raise ChainError(f"bad {SHOWN[name]} syntax: {exc}") from exc
        found.append(ArcField(name, position, _instance(name, value, tags), tags))
    return found


def cv_value(seal: ArcField) -> str:
    """The cv= of a seal, lower case ("" when absent)."""
    return seal.tags.get(b"cv", b"").decode("ascii", "replace").lower()


def build_chain(found: list[ArcField]) -> list[ArcSet]:
    """The sets of the chain, instance 1 first (``found`` is not empty)."""
    by_instance: dict[int, dict[bytes, ArcField]] = {}
    for fld in found:
        kinds = by_instance.setdefault(fld.instance, {})
        if fld.name in kinds:
            raise ChainError(f"more than one {SHOWN[fld.name]} for instance {fld.instance}")
        kinds[fld.name] = fld
    newest = max(by_instance)
    newest_seal = by_instance[newest].get(SEAL)
    if newest_seal is not None and cv_value(newest_seal) == "fail":
        raise ChainError(f"ARC-Seal[{newest}] says cv=fail")
    sets = []
    for instance in range(1, newest + 1):
        kinds = by_instance.get(instance, {})
        missing = [SHOWN[n] for n in ARC_FIELDS if n not in kinds]
        if missing:
            raise ChainError(f"incomplete ARC set for instance {instance}: no {missing[0]}")
        sets.append(ArcSet(instance, kinds[AAR], kinds[AMS], kinds[SEAL]))
    for arc_set in sets:
        cv = cv_value(arc_set.seal)
        expected = "none" if arc_set.instance == 1 else "pass"
        if cv != expected:
            raise ChainError(f"ARC-Seal[{arc_set.instance}] says cv={cv[:10]}, not {expected}")
    return sets
