"""ARC validation against chains sealed here with dkimpy's arc_sign (keys served by a real DNS
server on 127.0.0.1): none, a one- and a two-hop pass, chains broken in several ways, an
ed25519 chain, and garbage ARC fields that must give "fail" without an exception.
(Agreement with dkimpy's own ARC verifier: test_arc_differential.py.)"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import Iterator

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.dnsserver import TestDnsServer, zone_text

from hayate.auth.arc import verify_arc
from hayate.auth.arc_chain import arc_fields, build_chain
from hayate.auth.arc_seal import parse_message_signature, seal_data
from hayate.auth.canon import field_name, field_value, header_fields, split_message
from hayate.auth.dkim_check import SignedMessage
from hayate.auth.dkim_keys import PrivateKey, public_key_b64, txt_strings
from hayate.auth.dkim_tags import parse_tags
from hayate.dns import CachingResolver

MESSAGE = (
    b"From: Alice <alice@example.com>\r\nTo: list@lists.example.org\r\n"
    b"Subject: meeting\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n\r\nSee you at ten.\r\n"
)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


KEYS = {"lists.example.org": _key(), "forward.example.net": _key()}
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _zone(key: PrivateKey | None) -> str:
    if key is None:
        return zone_text("")
    kind = "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ed25519"
    value = f"v=DKIM1; k={kind}; p={public_key_b64(key)}"
    return zone_text("arc._domainkey TXT " + " ".join(f'"{s}"' for s in txt_strings(value)))


@pytest.fixture(scope="module")
def dns_server() -> Iterator[TestDnsServer]:
    zones = {domain: _zone(key) for domain, key in KEYS.items()}
    zones["ed.example"] = _zone(ED_KEY)
    zones["nokey.example"] = _zone(None)
    zones["flaky.example"] = _zone(None)
    with TestDnsServer(zones, servfail={"arc._domainkey.flaky.example"}) as server:
        yield server


@pytest.fixture
def resolver(dns_server: TestDnsServer) -> CachingResolver:
    return CachingResolver([dns_server.address], timeout=1.0)


def seal(message: bytes, domain: str, cv_source: str = "dkim=pass header.d=example.com",
         key: rsa.RSAPrivateKey | None = None) -> bytes:
    """One hop: the hop's Authentication-Results, then its ARC set on top."""
    withar = f"Authentication-Results: {domain}; {cv_source}\r\n".encode() + message
    headers = dkim.arc_sign(withar, b"arc", domain.encode(),
                            _pem(key or KEYS.get(domain) or _key()), domain.encode())
    assert headers, "dkimpy made no ARC set"
    return b"".join(headers) + withar


async def test_no_arc(resolver: CachingResolver) -> None:
    verdict = await verify_arc(MESSAGE, resolver)
    assert verdict.result == "none"


async def test_one_hop_passes(resolver: CachingResolver) -> None:
    verdict = await verify_arc(seal(MESSAGE, "lists.example.org"), resolver)
    assert (verdict.result, verdict.instance, verdict.sealer) == ("pass", 1, "lists.example.org")


async def test_two_hops_pass(resolver: CachingResolver) -> None:
    sealed = seal(seal(MESSAGE, "lists.example.org"), "forward.example.net", "arc=pass")
    verdict = await verify_arc(sealed, resolver)
    assert (verdict.result, verdict.instance, verdict.sealer) == ("pass", 2, "forward.example.net")


async def test_body_changed_after_sealing_fails(resolver: CachingResolver) -> None:
    sealed = seal(MESSAGE, "lists.example.org").replace(b"at ten", b"at noon")
    verdict = await verify_arc(sealed, resolver)
    assert verdict.result == "fail" and verdict.sealer == "lists.example.org"
    assert "ARC-Message-Signature" in verdict.reason


async def test_broken_seal_fails(resolver: CachingResolver) -> None:
    sealed = seal(seal(MESSAGE, "lists.example.org"), "forward.example.net", "arc=pass")
    # change the older seal's cv= claim: its own signature no longer matches
    broken = sealed.replace(b"i=1; cv=none", b"i=1; cv=pass", 1)
    assert broken != sealed
    verdict = await verify_arc(broken, resolver)
    assert verdict.result == "fail" and verdict.instance == 2


async def test_seal_with_wrong_key_fails(resolver: CachingResolver) -> None:
    forged = seal(MESSAGE, "lists.example.org", key=_key())  # not the published key
    assert (await verify_arc(forged, resolver)).result == "fail"


async def test_missing_key_fails(resolver: CachingResolver) -> None:
    verdict = await verify_arc(seal(MESSAGE, "nokey.example"), resolver)
    assert verdict.result == "fail" and not verdict.reason.startswith("temporary")


async def test_servfail_is_a_temporary_fail(resolver: CachingResolver) -> None:
    verdict = await verify_arc(seal(MESSAGE, "flaky.example"), resolver)
    assert verdict.result == "fail" and verdict.reason.startswith("temporary:")


async def test_incomplete_set_fails(resolver: CachingResolver) -> None:
    head, body = split_message(seal(MESSAGE, "lists.example.org"))
    kept = [f for f in header_fields(head) if field_name(f) != b"arc-seal"]
    verdict = await verify_arc(b"\r\n".join(kept) + b"\r\n\r\n" + body, resolver)
    assert verdict.result == "fail" and "incomplete ARC set" in verdict.reason


def _fields(message: bytes) -> tuple[list[bytes], bytes]:
    head, body = split_message(message)
    return header_fields(head), body


def _join(fields: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(fields) + b"\r\n\r\n" + body


def _with_b(fld: bytes, signature: bytes) -> bytes:
    return re.sub(rb"(?<=[; \t\n]b=)[^;]*", base64.b64encode(signature), fld)


def ed25519_chain() -> bytes:
    """A one-hop chain made ed25519-sha256 by ed.example: dkimpy cannot seal with ed25519, so
    both signatures of a dkimpy rsa chain are recomputed with our own signed-data functions
    (whose output is what the differential test compares with dkimpy)."""
    fields, body = _fields(seal(MESSAGE, "lists.example.org"))
    names = [field_name(f) for f in fields]
    ams, seal_at = names.index(b"arc-message-signature"), names.index(b"arc-seal")
    for at in (ams, seal_at):
        fields[at] = fields[at].replace(b"a=rsa-sha256", b"a=ed25519-sha256").replace(
            b"d=lists.example.org", b"d=ed.example")
    sig = parse_message_signature(parse_tags(field_value(fields[ams])), time.time(), 60)
    digest = hashlib.sha256(SignedMessage(_join(fields, body)).header_data(sig, ams)).digest()
    fields[ams] = _with_b(fields[ams], ED_KEY.sign(digest))
    parsed = SignedMessage(_join(fields, body))
    data = seal_data(parsed, build_chain(arc_fields(parsed.fields)))
    fields[seal_at] = _with_b(fields[seal_at], ED_KEY.sign(hashlib.sha256(data).digest()))
    return _join(fields, body)


async def test_ed25519_chain_passes(resolver: CachingResolver) -> None:
    chain = ed25519_chain()
    verdict = await verify_arc(chain, resolver)
    assert (verdict.result, verdict.instance, verdict.sealer) == ("pass", 1, "ed.example")
    tampered = chain.replace(b"dkim=pass", b"dkim=fail")
    assert tampered.count(b"dkim=fail") == 2  # the Authentication-Results and the AAR
    verdict = await verify_arc(tampered, resolver)
    assert (verdict.result, verdict.reason) == ("fail", "ARC-Seal[1]: signature did not verify")


async def test_rsa_key_for_an_ed25519_seal_fails(resolver: CachingResolver) -> None:
    chain = ed25519_chain().replace(b"d=ed.example", b"d=lists.example.org")
    verdict = await verify_arc(chain, resolver)
    assert verdict.result == "fail" and "key type does not match a=" in verdict.reason


async def test_seal_with_h_tag_fails(resolver: CachingResolver) -> None:
    sealed = seal(MESSAGE, "lists.example.org").replace(b"cv=none;", b"cv=none; h=from;", 1)
    verdict = await verify_arc(sealed, resolver)
    assert verdict.result == "fail" and "h= is not allowed" in verdict.reason


async def test_message_signature_over_arc_seal_fails(resolver: CachingResolver) -> None:
    sealed = seal(MESSAGE, "lists.example.org")
    changed = re.sub(rb"(?<=[; ])h=", b"h=ARC-Seal : ", sealed, count=1)
    assert changed != sealed
    verdict = await verify_arc(changed, resolver)
    assert verdict.result == "fail" and "h= signs ARC-Seal" in verdict.reason


async def test_cv_fail_in_newest_seal_fails_before_any_key(resolver: CachingResolver) -> None:
    sealed = seal(MESSAGE, "flaky.example").replace(b"cv=none", b"cv=fail", 1)
    verdict = await verify_arc(sealed, resolver)  # flaky.example's key would be a SERVFAIL
    assert (verdict.result, verdict.reason) == ("fail", "ARC-Seal[1] says cv=fail")


async def test_gap_fails(resolver: CachingResolver) -> None:
    two = seal(seal(MESSAGE, "lists.example.org"), "forward.example.net", "arc=pass")
    fields, body = _fields(two)
    gap = [f.replace(b" i=2;", b" i=3;", 1) for f in fields]
    verdict = await verify_arc(_join(gap, body), resolver)
    assert (verdict.result, verdict.instance) == ("fail", 3)
    assert verdict.reason.startswith("incomplete ARC set for instance 2")


# -- nothing raises -----------------------------------------------------------------------

_FRAGMENTS = [
    b"i=1", b"i=0", b"i=51", b"i=x", b"i=99999", b"cv=none", b"cv=pass", b"cv=fail", b"cv=",
    b"a=rsa-sha256", b"a=ed25519-sha256", b"a=", b"d=lists.example.org", b"d=", b"d=.",
    b"d=flaky.example", b"s=arc", b"s=", b"b=AAAA", b"b=", b"b=!!", b"bh=AAAA", b"h=from",
    b"h=", b"c=relaxed/relaxed", b"c=x", b"t=1", b"t=x", b"x=1", b"v=1", b"=", b"v", b";",
    b"\r\n\t", b" ", b"lists.example.org", b"\xc3\xa9=\xff",
]
_NAMES = [b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results"]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


TWO_HOPS = seal(seal(MESSAGE, "lists.example.org"), "forward.example.net", "arc=pass")


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(_NAMES),
    instance=st.sampled_from([1, 2]),
    keep_instance=st.booleans(),
    pieces=st.lists(st.sampled_from(_FRAGMENTS), max_size=14, unique=True),
    separator=st.sampled_from([b"; ", b";", b" ;\r\n\t"]),
    junk=st.binary(max_size=40),
)
def test_garbage_arc_fields_fail_without_raising(
    loop: asyncio.AbstractEventLoop, resolver: CachingResolver, name: bytes, instance: int,
    keep_instance: bool, pieces: list[bytes], separator: bytes, junk: bytes,
) -> None:
    if keep_instance:  # get past the instance checks to the tags and signatures
        pieces = [b"i=%d" % instance, *(p for p in pieces if not p.startswith(b"i="))]
    value = separator.join(pieces) + junk.replace(b"\r", b" ").replace(b"\n", b" ")
    fields, body = _fields(TWO_HOPS)
    at = [i for i, f in enumerate(fields) if f.lower().startswith(name.lower() + b":")]
    fields[at[2 - instance]] = name + b": " + value  # the top one is instance 2
    verdict = loop.run_until_complete(verify_arc(_join(fields, body), resolver))
    assert verdict.result == "fail", verdict
    assert not verdict.reason.startswith("cannot validate"), verdict


@settings(max_examples=200, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), cut=st.integers(0, 4000))
def test_garbage_in_a_chain_never_raises(
    loop: asyncio.AbstractEventLoop, resolver: CachingResolver, data: bytes, cut: int
) -> None:
    cut %= len(TWO_HOPS) + 1
    verdict = loop.run_until_complete(verify_arc(TWO_HOPS[:cut] + data + TWO_HOPS[cut:],
                                                 resolver))
    assert verdict.result in {"none", "pass", "fail"}, verdict
    assert not verdict.reason.startswith("cannot validate"), verdict
