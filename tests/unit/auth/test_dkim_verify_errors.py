"""Every way a DKIM signature or its key can be wrong gives the documented result
(dkim_verify's docstring), with keys served by a real DNS server on 127.0.0.1:

- malformed or unacceptable signature tags: "permerror", decided before any DNS query;
- an expired signature: "fail"; a t= in the future: "permerror" (clock skew allowed);
- key records with flags and problems: t=y ("neutral" instead of "fail"), t=s (i= must be
  d= itself), s= without email, RSA under 1024 bits, unknown k=, bad p=;
- random garbage in signature fields and messages never makes ``verify_dkim`` raise.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.dnsserver import TestDnsServer
from tests.unit.auth.dkim_corpus import DOMAIN, TestKey, key_zone, make_keys, txt_line

from hayate.auth.dkim_verify import verify_dkim
from hayate.dns import CachingResolver

KEYS = make_keys()
ED_P = KEYS["ed25519"].record[1].split("p=")[1]
RSA_P = KEYS["rsa"].record[1].split("p=")[1]
_SMALL = rsa.RSAPublicNumbers(65537, (1 << 767) | 12345).public_key()
SMALL_P = base64.b64encode(_SMALL.public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()

EXTRA_RECORDS = {
    "testing": f"v=DKIM1; k=ed25519; t=y; p={ED_P}",
    "strict": f"v=DKIM1; k=ed25519; t=s:y:x; p={ED_P}",
    "tlsrpt": f"v=DKIM1; k=ed25519; s=tlsrpt; p={ED_P}",
    "anyservice": f"v=DKIM1; k=ed25519; s=tlsrpt:email; h=sha1:sha256; p={ED_P}",
    "small": f"v=DKIM1; k=rsa; p={SMALL_P}",
    "dsa": f"v=DKIM1; k=dsa; p={RSA_P}",
    "badp": "v=DKIM1; k=ed25519; p=not*base64",
    "shorted": f"v=DKIM1; k=ed25519; p={base64.b64encode(b'x' * 31).decode()}",
    "notrsa": f"v=DKIM1; k=rsa; p={ED_P}",
    "pkcs1": "v=DKIM1; p=" + base64.b64encode(
        KEYS["rsa"].private.public_key().public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1)).decode(),
}

MESSAGE = (b"From: Alice <alice@example.test>\r\nTo: bob@example.net\r\nSubject: hello\r\n"
           b"\r\nBody text.\r\n")


@pytest.fixture(scope="module")
def dns_server() -> Iterator[TestDnsServer]:
    extra = "".join(txt_line(f"{sel}._domainkey", value) for sel, value in EXTRA_RECORDS.items())
    with TestDnsServer({DOMAIN: key_zone(KEYS, extra)}) as server:
        yield server


@pytest.fixture(scope="module")
def resolver(dns_server: TestDnsServer) -> CachingResolver:
    return CachingResolver([dns_server.address], timeout=2.0)


def signed_with(selector: str, key: TestKey | None = None, identity: bytes | None = None,
                message: bytes = MESSAGE) -> bytes:
    """``message`` signed by dkimpy (relaxed/relaxed) with ``key`` under ``selector``."""
    key = key or KEYS["ed25519"]
    signer = dkim.DKIM(message, signature_algorithm=key.signature_algorithm)
    field = signer.sign(selector.encode(), DOMAIN.encode(), key.dkimpy_private,
                        canonicalize=(b"relaxed", b"relaxed"), identity=identity,
                        include_headers=[b"from", b"to", b"subject"])
    return bytes(field) + message


GOOD = {"v": "1", "a": "ed25519-sha256", "d": DOMAIN, "s": "ed1", "h": "from:to",
        "bh": "AAAA", "b": "AAAA"}


def field(**tags: str | None) -> bytes:
    values = {**GOOD, **tags}
    return ("DKIM-Signature: " + "; ".join(f"{k}={v}" for k, v in values.items()
                                          if v is not None)).encode()


NOW = 1_800_000_000

BAD_SIGNATURES = {
    "missing v": (field(v=None), "missing v= tag"),
    "missing a": (field(a=None), "missing a= tag"),
    "missing b": (field(b=None), "missing b= tag"),
    "missing bh": (field(bh=None), "missing bh= tag"),
    "missing d": (field(d=None), "missing d= tag"),
    "missing h": (field(h=None), "missing h= tag"),
    "missing s": (field(s=None), "missing s= tag"),
    "v=2": (field(v="2"), "v= is not 1"),
    "rsa-sha1": (field(a="rsa-sha1"), "rsa-sha1 is not accepted (RFC 8301)"),
    "unknown a": (field(a="rsa-sha512"), "unknown algorithm"),
    "unknown c": (field(c="fancy"), "unknown canonicalization"),
    "unknown body c": (field(c="relaxed/fancy"), "unknown canonicalization"),
    "three c": (field(c="simple/simple/simple"), "unknown canonicalization"),
    "b not base64": (field(b="!!!!"), "b= is not valid base64"),
    "bh bad padding": (field(bh="AAA"), "bh= is not valid base64"),
    "b empty": (field(b=""), "b= is empty"),
    "d with space": (field(d="exa mple.test"), "d= is not a domain name"),
    "d empty label": (field(d="example..test"), "d= is not a domain name"),
    "s with @": (field(s="se@l"), "s= is not a domain name"),
    "From not signed": (field(h="to:subject"), "From is not signed"),
    "empty h name": (field(h="from::to"), "h= has an empty or malformed header name"),
    "i elsewhere": (field(i="alice@other.test"), "i= domain 'other.test' is not d="),
    "i parent": (field(i="@test"), "i= domain 'test' is not d="),
    "i not an address": (field(i="example.test"), "i= is not an address"),
    "l not a number": (field(l="12a"), "l= is not a number"),
    "t not a number": (field(t="-5"), "t= is not a number"),
    "x not a number": (field(x="soon"), "x= is not a number"),
    "q unknown": (field(q="http/get"), "no known query method"),
    "x before t": (field(t=str(NOW - 100), x=str(NOW - 200)), "x= is not later than t="),
    "t in the future": (field(t=str(NOW + 7200)), "t= is in the future"),
    "duplicate tag": (field() + b"; d=other.test", "bad signature syntax: duplicate d= tag"),
    "tag without =": (field() + b"; nonsense", "bad signature syntax: bad tag"),
    "bad tag name": (field() + b"; 1x=2", "bad signature syntax: bad tag"),
    "empty spec": (field() + b";; z=1", "bad signature syntax: bad tag"),
    "empty field": (b"DKIM-Signature:", "missing v= tag"),
    "8-bit junk": (b"DKIM-Signature: \xff\xfe=\x00; v=1", "bad signature syntax: bad tag"),
}


@pytest.mark.parametrize("case", sorted(BAD_SIGNATURES))
async def test_bad_signature_is_permerror_without_dns(
    resolver: CachingResolver, dns_server: TestDnsServer, case: str
) -> None:
    header, reason = BAD_SIGNATURES[case]
    before = dns_server.count()
    (verdict,) = await verify_dkim(header + b"\r\n" + MESSAGE, resolver, now=NOW)
    assert verdict.result == "permerror", verdict
    assert verdict.reason.startswith(reason), verdict.reason
    assert dns_server.count() == before


async def test_clock_skew_is_allowed(resolver: CachingResolver) -> None:
    # Within the skew: accepted as far as times go (the made-up b= then fails to verify).
    header = field(t=str(NOW + 600), x=str(NOW + 1200))
    (verdict,) = await verify_dkim(header + b"\r\n" + MESSAGE, resolver, now=NOW)
    assert verdict.result == "fail", verdict
    header = field(t=str(NOW - 7200), x=str(NOW - 600))
    (verdict,) = await verify_dkim(header + b"\r\n" + MESSAGE, resolver, now=NOW)
    assert verdict.result == "fail" and verdict.reason != "signature expired", verdict


async def test_expired_is_fail_without_dns(
    resolver: CachingResolver, dns_server: TestDnsServer
) -> None:
    before = dns_server.count()
    header = field(t=str(NOW - 86400), x=str(NOW - 7200))
    (verdict,) = await verify_dkim(header + b"\r\n" + MESSAGE, resolver, now=NOW)
    assert (verdict.result, verdict.reason) == ("fail", "signature expired")
    assert dns_server.count() == before


async def test_testing_key_turns_fail_into_neutral(resolver: CachingResolver) -> None:
    good = signed_with("testing")
    (verdict,) = await verify_dkim(good, resolver)
    assert verdict.result == "pass", verdict
    (verdict,) = await verify_dkim(good.replace(b"Body text", b"Body tex!"), resolver)
    assert verdict.result == "neutral", verdict
    assert verdict.reason == "body hash did not verify; the key is in testing mode (t=y)"


async def test_strict_key_wants_i_in_d_itself(resolver: CachingResolver) -> None:
    (verdict,) = await verify_dkim(signed_with("strict", identity=b"@example.test"), resolver)
    assert verdict.result == "pass", verdict
    below = signed_with("strict", identity=b"alice@mail.example.test")
    (verdict,) = await verify_dkim(below, resolver)
    assert verdict.result == "permerror"
    assert verdict.reason == "the key requires the i= domain to be d= itself (t=s)"
    # Without t=s, an i= in a subdomain of d= is fine.
    (verdict,) = await verify_dkim(signed_with("ed1", identity=b"a@mail.example.test"), resolver)
    assert verdict.result == "pass", verdict


@pytest.mark.parametrize(
    ("selector", "key", "result", "reason"),
    [
        ("tlsrpt", "ed25519", "permerror", "key is not for email (s= tag)"),
        ("anyservice", "ed25519", "pass", ""),
        ("small", "rsa", "permerror", "key too small (768 bits)"),
        ("dsa", "rsa", "permerror", "unusable key: unknown key type k=dsa"),
        ("badp", "ed25519", "permerror", "unusable key: p= is not valid base64"),
        ("shorted", "ed25519", "permerror", "unusable key: an ed25519 key has 32 bytes, not 31"),
        ("notrsa", "rsa", "permerror", "unusable key: not an RSA public key"),
        ("pkcs1", "rsa", "pass", ""),  # a bare RSAPublicKey instead of SubjectPublicKeyInfo
    ],
)
async def test_key_records(
    resolver: CachingResolver, selector: str, key: str, result: str, reason: str
) -> None:
    (verdict,) = await verify_dkim(signed_with(selector, KEYS[key]), resolver)
    assert verdict.result == result, verdict
    assert verdict.reason.startswith(reason), verdict.reason


async def test_wrong_size_signatures_fail(resolver: CachingResolver) -> None:
    for selector, key in (("ed1", KEYS["ed25519"]), ("rsa1", KEYS["rsa"])):
        signed = signed_with(selector, key)
        start = signed.index(b" b=") + 3  # b= is the last tag, From the first field after
        short = signed[:start] + b"AAAA" + signed[signed.index(b"\r\nFrom:") :]
        (verdict,) = await verify_dkim(short, resolver)
        assert (verdict.result, verdict.reason) == ("fail", "signature did not verify")


# -- nothing raises -----------------------------------------------------------------------

_FRAGMENTS = [
    b"v=1", b"a=rsa-sha256", b"a=ed25519-sha256", b"a=", b"c=relaxed/simple", b"c=simple",
    b"c=/", b"d=example.test", b"d=", b"d=.", b"s=ed1", b"s=rsa1", b"s=", b"h=from",
    b"h=From : To", b"h=:", b"bh=AAAA", b"bh=", b"b=AAAA", b"b=", b"l=0", b"l=99999999999",
    b"t=0", b"x=1", b"x=99999999999999999999", b"i=@example.test", b"i=@", b"i=@@",
    b"q=dns/txt", b"z=From:x|To:y", b"=", b"v", b";", b"\r\n\t", b" ", b"\xc3\xa9=\xff",
]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


ALLOWED = {"pass", "fail", "neutral", "permerror", "temperror"}


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pieces=st.lists(st.sampled_from(_FRAGMENTS), max_size=14),
    separator=st.sampled_from([b"; ", b";", b" ;\r\n\t"]),
    junk=st.binary(max_size=40),
)
def test_garbage_signatures_never_raise(
    loop: asyncio.AbstractEventLoop, resolver: CachingResolver,
    pieces: list[bytes], separator: bytes, junk: bytes,
) -> None:
    value = separator.join(pieces) + junk.replace(b"\r\n", b" ").replace(b"\n", b" ")
    message = b"DKIM-Signature: " + value + b"\r\n" + MESSAGE
    verdicts = loop.run_until_complete(verify_dkim(message, resolver))
    assert len(verdicts) == 1 and verdicts[0].result in ALLOWED, verdicts
    assert verdicts[0].result != "pass"


@settings(max_examples=200, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), cut=st.integers(0, 2000))
def test_garbage_messages_never_raise(
    loop: asyncio.AbstractEventLoop, resolver: CachingResolver, data: bytes, cut: int
) -> None:
    signed = signed_with("ed1", message=MESSAGE + b"more\r\n" * 3)
    cut %= len(signed) + 1
    message = signed[:cut] + data + signed[cut:]
    verdicts = loop.run_until_complete(verify_dkim(message, resolver, now=time.time()))
    assert all(v.result in ALLOWED for v in verdicts), verdicts
