"""Material for the differential DKIM tests (ours against dkimpy).

- :func:`make_keys`: an rsa-2048 and an ed25519 key, usable by all three signers (dkimpy,
  Hayate's :class:`DkimSigner`, OpenDKIM) and published by :func:`key_zone` in a zone for the
  test DNS server;
- :func:`corpus`: varied messages — folded and duplicated headers, odd whitespace, empty
  body, body without final CRLF, 8-bit text, many headers — built from a seed;
- :func:`dkimpy_sign`, :func:`hayate_sign`: signed copies (all canonicalizations, l=,
  over-signed and absent header names for dkimpy);
- :data:`MUTATIONS`: changes made to a signed message on its way (a body byte, a signed
  header, an added header instance, whitespace that relaxed tolerates and simple does not);
- :func:`dkimpy_passes`: dkimpy's verdict for each signature, the reference;
- :func:`delivered`: a message as the receiving MTA gets it (a body that did not end in CRLF
  when it was signed has one after SMTP; see ``canon.relaxed_body`` for why that matters).
"""

from __future__ import annotations

import base64
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from tests.support.dnsserver import zone_text

from hayate.auth.dkim_keys import DkimKey, PrivateKey, dns_record, txt_strings
from hayate.auth.dkim_sign import DkimSigner
from hayate.auth.dkim_verify import verify_dkim
from hayate.config import DkimConfig
from hayate.core.seams import TxtResolver

DOMAIN = "example.test"
CANONICALIZATIONS = [(h, b) for h in ("simple", "relaxed") for b in ("simple", "relaxed")]


@dataclass(frozen=True)
class TestKey:
    __test__ = False

    selector: str
    private: PrivateKey

    @property
    def algorithm(self) -> str:
        return "rsa" if isinstance(self.private, rsa.RSAPrivateKey) else "ed25519"

    @property
    def hayate(self) -> DkimKey:
        return DkimKey(DOMAIN, self.selector, self.algorithm,  # type: ignore[arg-type]
                       0.0, "active", self.private)

    @property
    def record(self) -> tuple[str, str]:
        """(name, TXT value)."""
        return dns_record(self.hayate)

    @property
    def pem(self) -> bytes:
        """PEM private key: PKCS#1 for rsa (dkimpy, OpenDKIM), PKCS#8 for ed25519 (OpenDKIM)."""
        fmt = (serialization.PrivateFormat.TraditionalOpenSSL if self.algorithm == "rsa"
               else serialization.PrivateFormat.PKCS8)
        return self.private.private_bytes(serialization.Encoding.PEM, fmt,
                                          serialization.NoEncryption())

    @property
    def dkimpy_private(self) -> bytes:
        """What dkimpy's signer takes: the PEM for rsa, the base64 seed for ed25519."""
        if self.algorithm == "rsa":
            return self.pem
        raw = self.private.private_bytes(serialization.Encoding.Raw,
                                         serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
        return base64.b64encode(raw)

    @property
    def signature_algorithm(self) -> bytes:
        return b"rsa-sha256" if self.algorithm == "rsa" else b"ed25519-sha256"


def make_keys() -> dict[str, TestKey]:
    return {
        "rsa": TestKey("rsa1", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "ed25519": TestKey("ed1", ed25519.Ed25519PrivateKey.generate()),
    }


def txt_line(label: str, value: str) -> str:
    return f"{label} TXT " + " ".join(f'"{s}"' for s in txt_strings(value)) + "\n"


def key_zone(keys: dict[str, TestKey], extra: str = "") -> str:
    """Zone text for DOMAIN with every key's record (plus ``extra`` lines)."""
    lines = "".join(txt_line(k.record[0].removesuffix("." + DOMAIN), k.record[1])
                    for k in keys.values())
    return zone_text(lines + extra)


def dkimpy_records(keys: dict[str, TestKey]) -> dict[bytes, bytes]:
    return {f"{k.record[0]}.".encode(): k.record[1].encode() for k in keys.values()}


# -- messages --------------------------------------------------------------------------

_WORDS = ["report", "numbers", "the", "Quarterly", "déjà", "vu", "naïve", "and", "x", "ok"]
_SPACES = [" ", " ", " ", "  ", "\t", " \t ", ""]


def _phrase(rng: random.Random, words: int) -> str:
    out = rng.choice(_WORDS)
    for _ in range(words - 1):
        out += (rng.choice(_SPACES) or " ") + rng.choice(_WORDS)
    return out


def _header_lines(rng: random.Random) -> list[str]:
    colon = rng.choice([": ", ":", ":  ", ":\t"])
    subject = _phrase(rng, rng.randint(1, 6)) + rng.choice(["", " ", "\t", "  "])
    to = ",\r\n\t".join(f"user{i}@example.net" for i in range(rng.randint(1, 3)))
    lines = [
        f"Received: from a.example.net by mx.example.test; {rng.randint(1, 9)} Nov 2026",
        f"Received: from b.example.net\r\n\tby a.example.net; {rng.randint(1, 9)} Nov 2026",
        f"From{colon}{rng.choice(['Alice', 'Zoë Ünal', 'A  B'])} <alice@{DOMAIN}>",
        f"To{colon}{to}",
        f"Subject{colon}{subject}",
        f"Date: Tue, {rng.randint(1, 28)} Nov 2026 10:00:00 +0000",
        f"Message-ID: <{rng.randint(1, 10**9)}@{DOMAIN}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain;\r\n charset=utf-8",
    ]
    if rng.random() < 0.5:
        lines.append("Cc: carol@example.net,\r\n   \r\n dave@example.net")
    if rng.random() < 0.5:
        lines += ["X-Dup: one", "X-Dup:  two ", "X-Dup:three"]
    if rng.random() < 0.4:
        lines += [f"X-Filler-{i}: {_phrase(rng, 3)}" for i in range(rng.randint(10, 40))]
    if rng.random() < 0.3:
        lines.append("X-Empty:")
    if rng.random() < 0.3:
        lines.append("X-Tab-Folded: a\r\n\t\tb\r\n c")
    head = lines[:2]
    rest = lines[2:]
    rng.shuffle(rest)
    return head + rest


def _body(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.1:
        return ""
    if kind < 0.15:
        return "\r\n\r\n"
    lines = []
    for _ in range(rng.randint(1, 30)):
        choice = rng.random()
        if choice < 0.15:
            lines.append("")
        elif choice < 0.25:
            lines.append(rng.choice([" ", "\t", " \t "]))
        else:
            lines.append(_phrase(rng, rng.randint(1, 12)) + rng.choice(["", "", " ", "\t", "  "]))
    body = "\r\n".join(lines)
    end = rng.random()
    if end < 0.15:
        # No final CRLF: the last line ends in a non-blank (see canon.relaxed_body: a
        # trailing blank on an unterminated last line is treated as SMTP delivers it).
        return body.rstrip(" \t\r\n") + "z"
    if end < 0.3:
        return body + "\r\n\r\n\r\n"
    return body + "\r\n"


def corpus(seed: int, count: int) -> list[bytes]:
    """``count`` varied messages (UTF-8, CRLF), the same for the same seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        head = "\r\n".join(_header_lines(rng))
        out.append((head + "\r\n\r\n" + _body(rng)).encode("utf-8"))
    return out


def present_names(message: bytes) -> list[bytes]:
    head = message.split(b"\r\n\r\n", 1)[0]
    return [m.group(1).lower() for m in re.finditer(rb"(?:^|\r\n)([!-9;-~]+)[ \t]*:", head)]


def random_h(rng: random.Random, message: bytes) -> list[bytes]:
    """A header list for dkimpy: From plus some present names (some over-signed), maybe an
    absent name; never a name dkimpy refuses to sign (Received, ...)."""
    names = [n for n in dict.fromkeys(present_names(message))
             if n not in dkim.DKIM.SHOULD_NOT and n != b"from"]
    chosen = [b"from", *rng.sample(names, rng.randint(0, len(names)))]
    counts = {n: present_names(message).count(n) for n in chosen}
    for name in list(chosen):
        if rng.random() < 0.3:  # over-sign: one more than there are
            chosen += [name] * counts[name]
    if rng.random() < 0.3:
        chosen.append(rng.choice([b"reply-to", b"list-id", b"sender"]))
    rng.shuffle(chosen)
    return chosen


def dkimpy_sign(message: bytes, key: TestKey, canon: tuple[str, str],
                headers: list[bytes], length: bool = False) -> bytes:
    signer = dkim.DKIM(message, signature_algorithm=key.signature_algorithm)
    signer.should_not_sign.discard(b"dkim-signature")  # signing an earlier signature is fine
    field = signer.sign(key.selector.encode(), DOMAIN.encode(), key.dkimpy_private,
                        canonicalize=(canon[0].encode(), canon[1].encode()),
                        include_headers=headers, length=length)
    return bytes(field) + message


def hayate_sign(message: bytes, *keys: TestKey) -> bytes:
    cfg = DkimConfig()
    signer = DkimSigner(cfg.headers, cfg.oversign)
    return signer.sign(message, [k.hayate for k in keys], time.time()) + message


def delivered(message: bytes) -> bytes:
    """``message`` as SMTP delivers it: DATA always ends with a line break."""
    return message if message.endswith(b"\r\n") else message + b"\r\n"


def dkimpy_passes(message: bytes, records: dict[bytes, bytes]) -> list[bool]:
    """dkimpy's verdict for each DKIM-Signature, top first (an exception is a failure)."""
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        return records.get(name, b"")

    verifier = dkim.DKIM(message, minkey=1024)
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    results = []
    for index in range(count):
        try:
            results.append(bool(verifier.verify(idx=index, dnsfunc=dnsfunc)))
        except dkim.DKIMException:
            results.append(False)
    return results


# -- mutations ---------------------------------------------------------------------------


def _split(message: bytes) -> tuple[bytes, bytes]:
    head, _, body = message.partition(b"\r\n\r\n")
    return head, body


def _join(head: bytes, body: bytes) -> bytes:
    return head + b"\r\n\r\n" + body


def _in_field(name: bytes, change: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """Apply ``change`` to the value of the last field called ``name`` (any case)."""
    pattern = re.compile(rb"(?:^|(?<=\r\n))(" + name + rb"[ \t]*:)((?:[^\r]|\r\n[ \t])*)", re.I)

    def mutate(message: bytes) -> bytes:
        head, body = _split(message)
        matches = list(pattern.finditer(head))
        if not matches:
            return message
        m = matches[-1]
        head = head[: m.start(2)] + change(m.group(2)) + head[m.end(2) :]
        return _join(head, body)

    return mutate


def _body_byte(message: bytes) -> bytes:
    head, body = _split(message)
    found = re.search(rb"[A-Za-z]", body)
    if found is None:
        return _join(head, body + b"x\r\n")
    i = found.start()
    return _join(head, body[:i] + bytes([body[i] ^ 0x20]) + body[i + 1 :])


def _insert_top(line: bytes) -> Callable[[bytes], bytes]:
    return lambda message: line + b"\r\n" + message


def _insert_bottom(line: bytes) -> Callable[[bytes], bytes]:
    def mutate(message: bytes) -> bytes:
        head, body = _split(message)
        return _join(head + b"\r\n" + line, body)

    return mutate


def _rename(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def mutate(message: bytes) -> bytes:
        head, body = _split(message)
        return _join(re.sub(rb"(^|\r\n)" + old + rb"(?=[ \t]*:)", rb"\1" + new, head), body)

    return mutate


def _body_lines(change: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def mutate(message: bytes) -> bytes:
        head, body = _split(message)
        return _join(head, b"\r\n".join(change(line) for line in body.split(b"\r\n")))

    return mutate


def _corrupt_b(message: bytes) -> bytes:
    found = re.search(rb"[ \t;]b=[ \t\r\n]*([A-Za-z0-9+/])", message)
    assert found is not None
    i = found.start(1)
    return message[:i] + (b"A" if message[i:i + 1] != b"A" else b"B") + message[i + 1:]


def _remove_field(name: bytes) -> Callable[[bytes], bytes]:
    def mutate(message: bytes) -> bytes:
        head, body = _split(message)
        return _join(re.sub(rb"(^|\r\n)" + name + rb":(?:[^\r]|\r\n[ \t])*", b"", head,
                            count=1, flags=re.I), body)

    return mutate


MUTATIONS: dict[str, Callable[[bytes], bytes]] = {
    "none": lambda m: m,
    "body byte": _body_byte,
    "Subject value changed": _in_field(b"Subject", lambda v: v + b"!"),
    "Date removed": _remove_field(b"Date"),
    "Subject added on top": _insert_top(b"Subject: added on top"),
    "Subject added at bottom": _insert_bottom(b"Subject: added at bottom"),
    "From added on top": _insert_top(b"From: mallory@evil.test"),
    "X-Dup added at bottom": _insert_bottom(b"X-Dup: four"),
    "unsigned header on top": _insert_top(b"X-Spam-Score: 0.1"),
    "header spaces doubled": _in_field(b"Subject", lambda v: v.replace(b" ", b" \t ")),
    "header refolded": _in_field(b"To", lambda v: v.replace(b",\r\n\t", b", ")
                                 if b"\r\n" in v else v + b"\r\n\t "),
    "header name case": _rename(b"Subject", b"SUBJECT"),
    "space after colon": _in_field(b"From", lambda v: b" " + v),
    "body trailing blanks": _body_lines(lambda line: line + b" \t" if line else line),
    "body spaces doubled": _body_lines(lambda line: line.replace(b" ", b"  ")),
    "body empty lines appended": lambda m: m + b"\r\n\r\n",
    "body text appended": lambda m: m + (b"" if m.endswith(b"\r\n") else b"\r\n")
    + b"P.S. appended on the way\r\n",
    "b= corrupted": _corrupt_b,
}


async def ours(message: bytes, resolver: TxtResolver) -> list[bool]:
    """Our verifier's pass/no-pass for each signature of ``message``, top first."""
    return [v.result == "pass" for v in await verify_dkim(message, resolver)]
