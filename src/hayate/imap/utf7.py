"""RFC 3501 §5.1.3 modified UTF-7, the encoding of IMAP mailbox names on the wire.

Printable US-ASCII (0x20-0x7E) stands for itself except ``&``, which is written ``&-``.
Everything else is a run of UTF-16BE code units in base64 (``,`` instead of ``/``, no
padding) between ``&`` and ``-``.

``encode`` always produces the one minimal form. ``decode`` is strict, like Dovecot: it
raises ``ValueError`` on any input that ``encode`` would not have produced — bytes outside
printable ASCII, an ``&`` without its ``-``, characters outside the base64 alphabet, leftover
bits that are not zero or make no whole code unit, a shift that encodes printable ASCII,
two shifts in a row, or broken surrogate pairs.
"""

from __future__ import annotations

import binascii

_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def _is_direct(char: str) -> bool:
    return "\x20" <= char <= "\x7e"


def encode(name: str) -> str:
    """The modified UTF-7 form of ``name`` (ASCII only)."""
    if name.isascii() and "&" not in name and name.isprintable():
        return name
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be", "surrogatepass")
            b64 = binascii.b2a_base64(raw, newline=False).rstrip(b"=")
            out.append("&" + b64.decode("ascii").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if _is_direct(char):
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _decode_shift(encoded: str) -> str:
    """One base64 run (between ``&`` and ``-``, non-empty) → its characters."""
    if any(ord(c) not in _B64 for c in encoded):
        raise ValueError("invalid character in modified base64")
    bits = len(encoded) * 6
    units, leftover = divmod(bits, 16)
    if units == 0 or leftover >= 6:
        raise ValueError("modified base64 does not end on a UTF-16 code unit")
    padded = encoded.replace(",", "/") + "=" * (-len(encoded) % 4)
    try:
        raw = binascii.a2b_base64(padded.encode("ascii"), strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid modified base64: {exc}") from None
    if len(raw) != units * 2:
        raise ValueError("modified base64 has extra bits")
    # The unused low bits of the last sextet must be zero.
    last = _SEXTET[encoded[-1]]
    if last & ((1 << leftover) - 1):
        raise ValueError("modified base64 has non-zero padding bits")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError("invalid UTF-16 surrogates in modified base64") from None
    if any(_is_direct(c) for c in text):
        raise ValueError("printable ASCII must not be base64-encoded")
    return text


_SEXTET = {
    c: i
    for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
}


def decode(encoded: str | bytes) -> str:
    """The name that ``encoded`` stands for; ``ValueError`` when it is not strictly valid."""
    if isinstance(encoded, bytes):
        try:
            encoded = encoded.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("8-bit byte in a modified UTF-7 name") from None
    if "&" not in encoded:
        if not all(_is_direct(c) for c in encoded):
            raise ValueError("control or 8-bit character in a modified UTF-7 name")
        return encoded
    out: list[str] = []
    pos = 0
    length = len(encoded)
    previous_shift_end = -1
    while pos < length:
        char = encoded[pos]
        if char != "&":
            if not _is_direct(char):
                raise ValueError("control or 8-bit character in a modified UTF-7 name")
            out.append(char)
            pos += 1
            continue
        end = encoded.find("-", pos + 1)
        if end < 0:
            raise ValueError("'&' without a closing '-'")
        if end == pos + 1:
            out.append("&")
        else:
            if previous_shift_end == pos:
                raise ValueError("two base64 runs in a row must be one")
            out.append(_decode_shift(encoded[pos + 1 : end]))
            previous_shift_end = end + 1
        pos = end + 1
    return "".join(out)
