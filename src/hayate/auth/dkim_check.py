"""One DKIM signature of a message checked against its public key (RFC 6376 3.7, 6.1.3; RFC 8463).

:class:`SignedMessage` parses a message once (header fields by name, the body) and keeps
the canonical bodies and body hashes it computed, so that two signatures with the same c=
(rsa and ed25519 from one signer) hash the body once. :func:`check_signature` then does,
for one :class:`~hayate.auth.dkim_signature.DkimSignature`:

1. **Body**: the body in the signature's canonical form (simple or relaxed), cut to l=
   octets when there is an l= tag, hashed with SHA-256 and compared with bh=.
   l= is honoured because RFC 6376 says so, but it is a risk: anyone can append text (or
   whole MIME parts) after the signed octets and the signature still passes. A body shorter
   than l= fails.
2. **From**: every From field of the message must be signed; a message with more From
   fields than h= names is a "fail". Bottom-up selection alone would let a second From
   added above the signed one ride on a valid signature (RFC 6376 8.15); dkimpy refuses
   that too, OpenDKIM 2.11 passes it.
3. **Header hash**: the fields named in h=, in h= order, each name taking the next
   instance of that name from the bottom of the header up (a name with no instance left,
   i.e. absent or over-signed, contributes nothing), each in the signature's header
   canonical form; then the DKIM-Signature field itself with its b= value deleted —
   unchanged for "simple", canonicalized for "relaxed", without the final CRLF either way.
   The field being verified is never one of the h= instances (it did not exist when it was
   signed).
4. **Signature**: rsa-sha256 is RSASSA-PKCS1-v1_5 over the SHA-256 of that data, ed25519-
   sha256 is Ed25519 over the same SHA-256 digest (RFC 8463), both checked by
   ``cryptography`` (OpenSSL).

The result is ("pass", "") or ("fail", reason).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from hayate.auth.canon import (
    field_name,
    header_fields,
    relaxed_body,
    relaxed_header,
    simple_body,
    simple_header,
    split_message,
)
from hayate.auth.dkim_keyrecord import PublicKey
from hayate.auth.dkim_signature import DkimSignature
from hayate.auth.dkim_tags import without_b_value

_PKCS1 = padding.PKCS1v15()
_PREHASHED = utils.Prehashed(hashes.SHA256())
SIGNATURE_FIELD = b"dkim-signature"


class SignedMessage:
    """A message (CRLF line ends) parsed once for checking all of its signatures."""

    def __init__(self, message: bytes) -> None:
        head, self.body = split_message(message)
        self.fields = header_fields(head)
        self._positions: dict[bytes, list[int]] = {}
        for index, fld in enumerate(self.fields):
            self._positions.setdefault(field_name(fld), []).append(index)
        self._bodies: dict[str, bytes] = {}
        self._body_hashes: dict[tuple[str, int | None], bytes | None] = {}

    def positions(self, name: bytes) -> list[int]:
        """Indexes in :attr:`fields` of the fields called ``name`` (lower case), top first."""
        return self._positions.get(name, [])

    def body_hash(self, canon: str, length: int | None) -> bytes | None:
        """SHA-256 of the canonical body (its first ``length`` octets); None when the body is
        shorter than ``length``."""
        key = (canon, length)
        if key in self._body_hashes:
            return self._body_hashes[key]
        body = self._bodies.get(canon)
        if body is None:
            body = relaxed_body(self.body) if canon == "relaxed" else simple_body(self.body)
            self._bodies[canon] = body
        digest: bytes | None = None
        if length is None:
            digest = hashlib.sha256(body).digest()
        elif length <= len(body):
            digest = hashlib.sha256(memoryview(body)[:length]).digest()
        self._body_hashes[key] = digest
        return digest

    def selected_fields(self, names: Sequence[bytes], exclude: int) -> list[bytes]:
        """The fields that h= ``names`` select, bottom-up per name, skipping ``exclude``."""
        left: dict[bytes, list[int]] = {}
        chosen: list[bytes] = []
        for name in names:
            stack = left.get(name)
            if stack is None:
                stack = [p for p in self.positions(name) if p != exclude]
                left[name] = stack
            if stack:
                chosen.append(self.fields[stack.pop()])
        return chosen

    def header_data(self, sig: DkimSignature, position: int) -> bytes:
        """What the signature's header hash covers (step 3 of the module docstring)."""
        canon = relaxed_header if sig.header_canon == "relaxed" else simple_header
        parts = [canon(f) for f in self.selected_fields(sig.headers, position)]
        parts.append(canon(without_b_value(self.fields[position]))[:-2])
        return b"".join(parts)


def check_signature(
    message: SignedMessage, position: int, sig: DkimSignature, key: PublicKey
) -> tuple[str, str]:
    """("pass", "") or ("fail", why) for the signature in field ``position`` of ``message``."""
    body_hash = message.body_hash(sig.body_canon, sig.length)
    if body_hash is None:
        return "fail", "body is shorter than l="
    if not hmac.compare_digest(body_hash, sig.body_hash):
        return "fail", "body hash did not verify"
    if len(message.positions(b"from")) > sig.headers.count(b"from"):
        return "fail", "a From field is not signed"
    digest = hashlib.sha256(message.header_data(sig, position)).digest()
    if not signature_matches(key, sig.signature, digest):
        return "fail", "signature did not verify"
    return "pass", ""


def signature_matches(key: PublicKey, signature: bytes, digest: bytes) -> bool:
    """Whether ``signature`` is ``key``'s signature of a SHA-256 ``digest`` (step 4; the
    ARC-Seal check uses it too)."""
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, _PKCS1, _PREHASHED)
        else:
            key.verify(signature, digest)
    except InvalidSignature:
        return False
    return True
