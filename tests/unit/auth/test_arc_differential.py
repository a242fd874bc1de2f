"""Our ARC validation against dkimpy's on the same chains, keys served by a real DNS server.

Chains of 1 to 3 hops are sealed with dkimpy's ``arc_sign`` over varied messages, then
changed (the body, a signed header, an ARC-Authentication-Results, a seal or a whole set
removed, an instance renumbered, a cv= changed, a hop that sealed with cv=fail, the body
changed between two hops, a header added on top) and checked by ``verify_arc`` and by
dkimpy's ``arc_verify``: the result (pass or fail) is the same for every version.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.support.dnsserver import TestDnsServer, zone_text
from tests.unit.auth.dkim_corpus import corpus, delivered

from hayate.auth.arc import verify_arc
from hayate.auth.canon import field_name, header_fields, split_message
from hayate.auth.dkim_keys import public_key_b64, txt_strings
from hayate.dns import CachingResolver

HOPS = ("lists.example.org", "forward.example.net", "relay.example.com")
KEYS = {d: rsa.generate_private_key(public_exponent=65537, key_size=1024) for d in HOPS}
RECORDS = {d: f"v=DKIM1; k=rsa; p={public_key_b64(k)}" for d, k in KEYS.items()}
MESSAGES = [delivered(m) for m in corpus(8617, 4)]
_ARC = (b"arc-seal", b"arc-message-signature", b"arc-authentication-results")
_INSTANCE = re.compile(rb"[ \t]*i=([0-9]+);")


@pytest.fixture(scope="module")
def resolver() -> Iterator[CachingResolver]:
    zones = {d: zone_text("arc._domainkey TXT " + " ".join(f'"{s}"' for s in txt_strings(v)))
             for d, v in RECORDS.items()}
    with TestDnsServer(zones) as server:
        yield CachingResolver([server.address], timeout=2.0)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def seal(message: bytes, hop: int, claim: str = "") -> bytes:
    """The message after hop ``hop`` (0-based): its Authentication-Results and ARC set."""
    domain = HOPS[hop]
    claim = claim or ("dkim=pass header.d=example.test" if hop == 0 else "arc=pass")
    withar = f"Authentication-Results: {domain}; {claim}\r\n".encode() + message
    fields = dkim.arc_sign(withar, b"arc", domain.encode(), _pem(KEYS[domain]), domain.encode())
    assert fields, "dkimpy made no ARC set"
    return b"".join(fields) + withar


def dkimpy_result(message: bytes) -> str:
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        domain = name.decode().rstrip(".").removeprefix("arc._domainkey.")
        return RECORDS.get(domain, "").encode()

    cv, _, reason = dkim.arc_verify(message, dnsfunc=dnsfunc)
    if cv == dkim.CV_None and reason == "Message is not ARC signed":
        return "none"
    return "pass" if cv == dkim.CV_Pass else "fail"


# -- changes made to a sealed message ------------------------------------------------------


def _fields(message: bytes) -> tuple[list[bytes], bytes]:
    head, body = split_message(message)
    return header_fields(head), body


def _join(fields: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(fields) + b"\r\n\r\n" + body


def _instance(fld: bytes) -> int:
    if field_name(fld) not in _ARC:
        return 0
    found = _INSTANCE.match(fld[fld.index(b":") + 1 :])
    assert found, fld
    return int(found.group(1))


def _edit(message: bytes, change: Callable[[bytes], bytes | None]) -> bytes:
    """Each field replaced by ``change(field)`` (None drops it)."""
    fields, body = _fields(message)
    kept = [new for new in map(change, fields) if new is not None]
    return _join(kept, body)


def _in_set(instance: int, name: bytes, change: Callable[[bytes], bytes | None]
            ) -> Callable[[bytes], bytes | None]:
    """Apply ``change`` to the field ``name`` (b"*": every field) of set ``instance``."""
    def edit(fld: bytes) -> bytes | None:
        if _instance(fld) == instance and name in (field_name(fld), b"*"):
            return change(fld)
        return fld
    return edit


def _replace(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def change(fld: bytes) -> bytes:
        assert old in fld, (old, fld)
        return fld.replace(old, new, 1)
    return change


def _chain(message: bytes, hops: int) -> bytes:
    for hop in range(hops):
        message = seal(message, hop)
    return message


def versions(message: bytes, hops: int) -> Iterator[tuple[str, bytes]]:
    sealed = _chain(message, hops)
    yield "intact", sealed
    head, body = split_message(sealed)
    yield "body changed", head + b"\r\n\r\n" + body + b"one more line\r\n"
    yield "subject changed", _edit(sealed, lambda f: f.replace(b"Subject:", b"Subject: Re:")
                                   if field_name(f) == b"subject" else f)
    yield "Received added on top", b"Received: from x.example by mx.example\r\n" + sealed
    for k in range(1, hops + 1):
        yield f"AAR {k} changed", _edit(sealed, _in_set(
            k, b"arc-authentication-results", lambda f: f.replace(b"pass", b"fail", 1)))
        yield f"seal {k} removed", _edit(sealed, _in_set(k, b"arc-seal", lambda f: None))
        yield f"AMS {k} removed", _edit(
            sealed, _in_set(k, b"arc-message-signature", lambda f: None))
        yield f"set {k} removed", _edit(sealed, lambda f, k=k: None if _instance(f) == k else f)
        old, new = (b"cv=none", b"cv=pass") if k == 1 else (b"cv=pass", b"cv=none")
        yield f"cv {k} wrong", _edit(sealed, _in_set(k, b"arc-seal", _replace(old, new)))
        yield f"cv {k} fail", _edit(sealed, _in_set(k, b"arc-seal", _replace(old, b"cv=fail")))
    yield "newest set renumbered", _edit(sealed, _in_set(
        hops, b"*", _replace(b"i=%d;" % hops, b"i=%d;" % (hops + 1))))
    yield "sealed after a failure", seal(sealed, hops % len(HOPS), "arc=fail")
    if hops >= 2:  # a mailing list's footer between two hops: only the newest AMS counts
        first = seal(message, 0)
        head, body = split_message(first)
        changed = head + b"\r\n\r\n" + body + b"-- \r\nlist footer\r\n"
        for hop in range(1, hops):
            changed = seal(changed, hop)
        yield "body changed between hops", changed


CASES = [(f"{hops} hops, message {i}: {label}", version)
         for i, message in enumerate(MESSAGES)
         for hops in (1, 2, 3)
         for label, version in versions(message, hops)]


def test_cases_cover_both_results() -> None:
    results = {label: dkimpy_result(version) for label, version in CASES}
    expected_pass = [r for label, r in results.items() if label.endswith(("intact", "hops"))]
    assert len(expected_pass) == 3 * len(MESSAGES) + 2 * len(MESSAGES)
    assert set(expected_pass) == {"pass"}
    assert sum(r == "fail" for r in results.values()) > len(CASES) // 2


@pytest.mark.parametrize("label,message", CASES, ids=[label for label, _ in CASES])
async def test_same_result_as_dkimpy(
    resolver: CachingResolver, label: str, message: bytes
) -> None:
    verdict = await verify_arc(message, resolver)
    assert verdict.result == dkimpy_result(message), (label, verdict)
    assert not verdict.reason.startswith(("cannot validate", "temporary")), verdict
