"""verify_dkim against a real DNS server on 127.0.0.1 through the cached async resolver:
pass, fail, no key (permerror), SERVFAIL (temperror), broken key records."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from tests.support.dnsserver import TestDnsServer, zone_text

from hayate.auth.dkim_keys import DkimKey, DkimKeyStore, dns_record, txt_strings
from hayate.auth.dkim_sign import DkimSigner
from hayate.auth.dkim_verify import verify_dkim
from hayate.config import DkimConfig
from hayate.dns import CachingResolver

MESSAGE = (
    b"From: Alice <alice@example.test>\r\nTo: bob@example.net\r\nSubject: report\r\n"
    b"Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n\r\nThe numbers are in.\r\n"
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DkimKey]:
    store = DkimKeyStore(tmp_path_factory.mktemp("dkim"))
    out = {
        "rsa": store.generate("example.test", "rsa", "rsa1"),
        "ed25519": store.generate("example.test", "ed25519", "ed1"),
    }
    for sel in ("missing", "revoked", "garbage", "mismatch", "sha1only", "flaky"):
        out[sel] = store.generate("example.test", "ed25519", sel)
    return out


def _txt(label: str, value: str) -> str:
    return f"{label} TXT " + " ".join(f'"{s}"' for s in txt_strings(value)) + "\n"


@pytest.fixture(scope="module")
def dns_server(keys: dict[str, DkimKey]) -> Iterator[TestDnsServer]:
    records = ""
    for name in ("rsa", "ed25519"):
        full, value = dns_record(keys[name])
        records += _txt(full.removesuffix(".example.test"), value)
    ed_p = dns_record(keys["ed25519"])[1].split("p=")[1]
    rsa_value = dns_record(keys["rsa"])[1]
    records += _txt("revoked._domainkey", "v=DKIM1; k=ed25519; p=")
    records += _txt("garbage._domainkey", "this is not a key")
    records += _txt("mismatch._domainkey", rsa_value)  # an rsa key for an ed25519 signature
    records += _txt("sha1only._domainkey", f"v=DKIM1; k=ed25519; h=sha1; p={ed_p}")
    zone = zone_text(records)
    with TestDnsServer({"example.test": zone}, servfail={"flaky._domainkey.example.test"}) as s:
        yield s


@pytest.fixture
def resolver(dns_server: TestDnsServer) -> CachingResolver:
    return CachingResolver([dns_server.address], timeout=1.0)


def sign(message: bytes, *ks: DkimKey) -> bytes:
    cfg = DkimConfig()
    return DkimSigner(cfg.headers, cfg.oversign).sign(message, ks, time.time()) + message


@pytest.mark.parametrize("algo", ["rsa", "ed25519"])
async def test_pass(keys: dict[str, DkimKey], resolver: CachingResolver, algo: str) -> None:
    signed = sign(MESSAGE, keys[algo])
    (verdict,) = await verify_dkim(signed, resolver)
    assert verdict.result == "pass", verdict
    assert (verdict.domain, verdict.selector) == ("example.test", keys[algo].selector)
    assert verdict.algorithm == keys[algo].signature_algorithm
    assert len(verdict.b_prefix) == 8 and verdict.b_prefix in signed.decode().replace("\t", "")


async def test_body_changed_fails(keys: dict[str, DkimKey], resolver: CachingResolver) -> None:
    signed = sign(MESSAGE, keys["rsa"]).replace(b"are in", b"are out")
    (verdict,) = await verify_dkim(signed, resolver)
    assert (verdict.result, verdict.reason) == ("fail", "body hash did not verify")


async def test_header_changed_fails(keys: dict[str, DkimKey], resolver: CachingResolver) -> None:
    signed = sign(MESSAGE, keys["ed25519"]).replace(b"Subject: report", b"Subject: invoice")
    (verdict,) = await verify_dkim(signed, resolver)
    assert (verdict.result, verdict.reason) == ("fail", "signature did not verify")


async def test_dual_signed_with_one_bad(
    keys: dict[str, DkimKey], resolver: CachingResolver
) -> None:
    signed = sign(MESSAGE, keys["rsa"], keys["missing"], keys["ed25519"])
    verdicts = await verify_dkim(signed, resolver)
    assert [(v.selector, v.result) for v in verdicts] == [
        ("rsa1", "pass"), ("missing", "permerror"), ("ed1", "pass")
    ]
    assert "NXDOMAIN" in verdicts[1].reason


@pytest.mark.parametrize(
    ("selector", "result", "reason"),
    [
        ("missing", "permerror", "no key for signature (NXDOMAIN)"),
        ("revoked", "permerror", "key revoked (empty p=)"),
        ("garbage", "permerror", "key record has bad syntax"),
        ("mismatch", "permerror", "key type does not match a="),
        ("sha1only", "permerror", "key does not allow sha256 (h= tag)"),
        ("flaky", "temperror", "key lookup failed"),
    ],
)
async def test_key_problems(
    keys: dict[str, DkimKey], resolver: CachingResolver, selector: str, result: str, reason: str
) -> None:
    (verdict,) = await verify_dkim(sign(MESSAGE, keys[selector]), resolver)
    assert verdict.result == result
    assert verdict.reason.startswith(reason), verdict.reason


async def test_no_signature(resolver: CachingResolver, dns_server: TestDnsServer) -> None:
    before = dns_server.count()
    assert await verify_dkim(MESSAGE, resolver) == []
    assert dns_server.count() == before  # no lookups at all


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=rsa1; h=from; bh=AAAA",
         "missing b= tag"),
        (b"DKIM-Signature: v=1; a=rsa-sha1; d=example.test; s=rsa1; h=from; bh=AA; b=AA",
         "rsa-sha1 is not accepted"),
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=rsa1; h=to; bh=AA; b=AA",
         "From is not signed"),
        (b"DKIM-Signature: v=1; a=rsa-sha256; a=rsa-sha256; d=x; s=y; h=from; bh=A; b=A",
         "bad signature syntax"),
    ],
)
async def test_bad_signature_tags_are_permerror(
    resolver: CachingResolver, dns_server: TestDnsServer, header: bytes, reason: str
) -> None:
    before = dns_server.count()
    (verdict,) = await verify_dkim(header + b"\r\n" + MESSAGE, resolver)
    assert verdict.result == "permerror" and verdict.reason.startswith(reason), verdict
    assert dns_server.count() == before


async def test_expired_signature_fails(keys: dict[str, DkimKey], resolver: CachingResolver) -> None:
    cfg = DkimConfig()
    signer = DkimSigner(cfg.headers, cfg.oversign, expire_after=60)
    old = time.time() - 3 * 86400
    signed = signer.sign(MESSAGE, [keys["ed25519"]], old) + MESSAGE
    (verdict,) = await verify_dkim(signed, resolver)
    assert (verdict.result, verdict.reason) == ("fail", "signature expired")


async def test_max_signatures(keys: dict[str, DkimKey], resolver: CachingResolver) -> None:
    signed = sign(MESSAGE, *[keys["ed25519"]] * 4)
    assert len(await verify_dkim(signed, resolver, max_signatures=2)) == 2


async def test_bare_lf_message(keys: dict[str, DkimKey], resolver: CachingResolver) -> None:
    signed = sign(MESSAGE, keys["rsa"]).replace(b"\r\n", b"\n")
    (verdict,) = await verify_dkim(signed, resolver)
    assert verdict.result == "pass"
