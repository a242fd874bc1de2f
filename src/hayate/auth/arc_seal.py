"""The two signatures of an ARC set read and checked (RFC 8617 4.1.2, 4.1.3, 5.1.1, 5.1.2).

- :func:`parse_message_signature`: an ARC-Message-Signature has the tags of a DKIM-Signature
  except that i= is the instance (already read) and there is no v=, so its tags are read by
  :func:`hayate.auth.dkim_signature.parse_signature` without i= and with v=1; it must not
  sign ARC-Seal fields. It is then checked like a DKIM signature
  (:func:`hayate.auth.dkim_check.check_signature`: body hash, signed fields, c= as given).
- :func:`parse_seal`: an ARC-Seal needs a= (rsa-sha256 or ed25519-sha256), b=, cv=, d=, s=;
  t= is a number when present; h= is not allowed. Other tags are ignored.
- :func:`check_seal`: the seal of instance n signs, for each instance 1..n in order, its
  ARC-Authentication-Results, ARC-Message-Signature and ARC-Seal fields, all in relaxed
  form, the last one being the seal itself with its b= value emptied and without its final
  CRLF; the SHA-256 of that is checked against b= with the sealer's key.

Both parsers raise :class:`~hayate.auth.dkim_signature.SignatureError` with the reason.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hayate.auth.arc_chain import SEAL, ArcSet
from hayate.auth.canon import relaxed_header
from hayate.auth.dkim_check import SignedMessage, signature_matches
from hayate.auth.dkim_keyrecord import PublicKey
from hayate.auth.dkim_signature import (
    ALGORITHMS,
    DkimSignature,
    SignatureError,
    parse_signature,
)
from hayate.auth.dkim_tags import without_b_value

_SEAL_REQUIRED = (b"a", b"b", b"cv", b"d", b"s")
_WSP = re.compile(rb"[ \t\r\n]+")
_LABEL = rb"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_NAME = re.compile(_LABEL + rb"(?:\." + _LABEL + rb")*\.?")


@dataclass(frozen=True, slots=True)
class ArcSeal:
    """The decoded tags of one ARC-Seal field."""

    algorithm: str  # "rsa-sha256" | "ed25519-sha256"
    signature: bytes  # b=, decoded
    domain: str  # d=, lower case, no trailing dot
    selector: str  # s=, lower case

    @property
    def key_name(self) -> str:
        """The TXT record holding the key: ``<s>._domainkey.<d>``."""
        return f"{self.selector}._domainkey.{self.domain}"


def _failure(reason: str) -> SignatureError:
    return SignatureError("fail", reason)


def _domain_name(tags: dict[bytes, bytes], name: bytes) -> str:
    value = tags[name]
    if len(value) > 253 or _NAME.fullmatch(value) is None:
        shown = value[:60].decode("ascii", "replace")
        raise _failure(f"{name.decode()}= is not a domain name: {shown!r}")
    return value.decode("ascii").lower().rstrip(".")


def parse_seal(tags: dict[bytes, bytes]) -> ArcSeal:
    """The decoded seal, or :class:`SignatureError` (see the module docstring)."""
    for name in _SEAL_REQUIRED:
        if name not in tags:
            raise _failure(f"missing {name.decode()}= tag")
    if b"h" in tags:
        raise _failure("h= is not allowed in an ARC-Seal")
    algorithm = tags[b"a"].decode("ascii", "replace").lower()
    if algorithm not in ALGORITHMS:
        raise _failure(f"unknown algorithm {algorithm[:30]!r}")
    if b"t" in tags and not tags[b"t"].isdigit():
        raise _failure("t= is not a number")
    try:
        signature = binascii.a2b_base64(_WSP.sub(b"", tags[b"b"]), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise _failure("b= is not valid base64") from exc
    if not signature:
        raise _failure("b= is empty")
    return ArcSeal(algorithm, signature, _domain_name(tags, b"d"), _domain_name(tags, b"s"))


def parse_message_signature(
    tags: dict[bytes, bytes], now: float, clock_skew: float
) -> DkimSignature:
    """The decoded message signature, or :class:`SignatureError`."""
    dkim_tags = {name: value for name, value in tags.items() if name not in (b"i", b"v")}
    dkim_tags[b"v"] = b"1"
    sig = parse_signature(dkim_tags, now, clock_skew)
    if SEAL in sig.headers:
        raise _failure("h= signs ARC-Seal")
    return sig


def seal_data(message: SignedMessage, sets: Sequence[ArcSet]) -> bytes:
    """What the seal of the last of ``sets`` (instances 1..n in order) signs."""
    parts = []
    for arc_set in sets:
        parts.append(relaxed_header(message.fields[arc_set.results.position]))
        parts.append(relaxed_header(message.fields[arc_set.signature.position]))
        parts.append(relaxed_header(message.fields[arc_set.seal.position]))
    last = message.fields[sets[-1].seal.position]
    parts[-1] = relaxed_header(without_b_value(last))[:-2]
    return b"".join(parts)


def check_seal(
    message: SignedMessage, sets: Sequence[ArcSet], seal: ArcSeal, key: PublicKey
) -> bool:
    """Whether the seal of the last of ``sets`` verifies with ``key``."""
    digest = hashlib.sha256(seal_data(message, sets)).digest()
    return signature_matches(key, seal.signature, digest)
