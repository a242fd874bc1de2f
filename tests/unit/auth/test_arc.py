"""ARC validation against chains sealed here with dkimpy's arc_sign (keys served by a real DNS
server on 127.0.0.1): none, a one- and a two-hop pass, and chains broken in several ways."""

from __future__ import annotations

from collections.abc import Iterator

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.support.dnsserver import TestDnsServer, zone_text

from hayate.auth.arc import verify_arc
from hayate.auth.canon import field_name, header_fields, split_message
from hayate.auth.dkim_keys import public_key_b64, txt_strings
from hayate.dns import CachingResolver

MESSAGE = (
    b"From: Alice <alice@example.com>\r\nTo: list@lists.example.org\r\n"
    b"Subject: meeting\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n\r\nSee you at ten.\r\n"
)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


KEYS = {"lists.example.org": _key(), "forward.example.net": _key()}


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _zone(key: rsa.RSAPrivateKey | None) -> str:
    if key is None:
        return zone_text("")
    value = f"v=DKIM1; k=rsa; p={public_key_b64(key)}"
    return zone_text("arc._domainkey TXT " + " ".join(f'"{s}"' for s in txt_strings(value)))


@pytest.fixture(scope="module")
def dns_server() -> Iterator[TestDnsServer]:
    zones = {domain: _zone(key) for domain, key in KEYS.items()}
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
    assert verdict.result == "fail" and "Incomplete ARC set" in verdict.reason
