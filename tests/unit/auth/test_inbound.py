"""The inbound-check filter with a real DNS server, real DKIM signatures and ARC seals (dkimpy):
the header it adds, DMARC reject / quarantine, trusted ARC sealers, DNS trouble, which
sessions it skips, that a domain publishing nothing costs no DNS on the next message, and
the SPF check of the HELO name (a second spf= entry; the SPF result of bounces)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.support.dnsserver import TestDnsServer, zone_text

from hayate.auth.dmarc import DmarcResult
from hayate.auth.inbound import InboundAuthFilter, from_outside
from hayate.auth.verdicts import ArcVerdict
from hayate.config import InboundAuthConfig
from hayate.core.envelope import Envelope, Listener, SessionInfo
from hayate.core.reply import SmtpError
from hayate.dns import CachingResolver

HOST = "mx.us.test"


@dataclass(frozen=True)
class Key:
    pem: bytes
    record: str  # zone-file TXT data, split in strings of <= 255 characters


def make_key() -> Key:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    text = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    return Key(pem, " ".join(f'"{text[i:i + 250]}"' for i in range(0, len(text), 250)))


KEY = make_key()


def zones() -> dict[str, str]:
    return {
        "good.test": zone_text(
            '@ TXT "v=spf1 ip4:127.0.0.1 -all"\n'
            '_dmarc TXT "v=DMARC1; p=reject"\n'
            f"sel._domainkey TXT {KEY.record}"
        ),
        "spoofed.test": zone_text('@ TXT "v=spf1 ip4:192.0.2.1 -all"\n'
                                  '_dmarc TXT "v=DMARC1; p=reject"'),
        "quar.test": zone_text('@ TXT "v=spf1 -all"\n_dmarc TXT "v=DMARC1; p=quarantine"'),
        "lists.test": zone_text(
            f'@ TXT "v=spf1 ip4:127.0.0.1 -all"\narc._domainkey TXT {KEY.record}'
        ),
        "shady.test": zone_text(f"arc._domainkey TXT {KEY.record}"),
        "temp.test": zone_text('@ TXT "v=spf1 ip4:127.0.0.1 -all"'),
        "plain.test": zone_text("@ A 192.0.2.9"),
        "helo.test": zone_text(
            'mx TXT "v=spf1 ip4:127.0.0.1 -all"\n'
            'bad TXT "v=spf1 ip4:192.0.2.1 -all"\n'
            'broken TXT "v=spf1 ip4:127.0.0.1 bogus:x -all"\n'
            '_dmarc TXT "v=DMARC1; p=reject"'
        ),
    }


@pytest.fixture(scope="module")
def dns_server() -> Iterator[TestDnsServer]:
    with TestDnsServer(zones(), servfail={"_dmarc.temp.test", "_dmarc.spoofed.test"}) as server:
        yield server


@pytest.fixture(scope="module")
def dns_server_ok() -> Iterator[TestDnsServer]:
    with TestDnsServer(zones()) as server:
        yield server


@pytest.fixture
def resolver(dns_server_ok: TestDnsServer) -> CachingResolver:
    return CachingResolver([dns_server_ok.address], timeout=1.0)


MX = SessionInfo(Listener.MX, peer_ip="127.0.0.1", peer_port=4000, helo="client.good.test")


def message(from_: str, subject: str = "hello") -> bytes:
    return (
        f"Received: from client by {HOST}\r\nFrom: {from_}\r\nTo: rcpt@us.test\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{subject}@x>\r\n\r\nbody line\r\n"
    ).encode()


def signed(msg: bytes, domain: str) -> bytes:
    sig = dkim.sign(msg, b"sel", domain.encode(), KEY.pem,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"message-id"])
    return bytes(sig) + msg


def sealed(msg: bytes, sealer: str) -> bytes:
    with_ar = f"Authentication-Results: {sealer}; spf=pass smtp.mailfrom=x\r\n".encode() + msg
    headers = dkim.arc_sign(with_ar, b"arc", sealer.encode(), KEY.pem, sealer.encode())
    return b"".join(headers) + with_ar


def env(sender: str) -> Envelope:
    return Envelope(sender, ("rcpt@us.test",))


def our_field(data: bytes) -> str:
    assert data.startswith(b"Authentication-Results: " + HOST.encode() + b";")
    end = data.index(b"\r\n", data.index(b"\r\n") + 2)
    while data[end + 2 : end + 3] == b"\t":
        end = data.index(b"\r\n", end + 2)
    return data[:end].decode().replace("\r\n", "").replace("\t", " ")


async def test_spf_and_dmarc_pass(resolver: CachingResolver) -> None:
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)
    msg = message("Alice <alice@good.test>")
    out = await check(MX, env("alice@good.test"), msg)
    assert out.endswith(msg)
    field = our_field(out)
    assert "spf=pass (ip4:127.0.0.1 matched) smtp.mailfrom=good.test" in field
    assert "dkim=none" in field
    assert "dmarc=pass (p=REJECT) header.from=good.test" in field
    assert field.endswith("arc=none")
    assert b"X-Hayate-Quarantine" not in out


async def test_dkim_pass_rescues_a_forwarded_message(resolver: CachingResolver) -> None:
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)
    msg = signed(message("alice@good.test", "fwd"), "good.test")
    # Forwarded: the envelope sender is the forwarder's, whose SPF does not list us.
    out = await check(MX, env("fwd@spoofed.test"), msg)
    field = our_field(out)
    assert "spf=fail" in field and "smtp.mailfrom=spoofed.test" in field
    assert "dkim=pass header.d=good.test header.s=sel header.a=rsa-sha256" in field
    assert "dmarc=pass" in field


async def test_dmarc_reject(resolver: CachingResolver) -> None:
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)
    with pytest.raises(SmtpError) as info:
        await check(MX, env("ceo@spoofed.test"), message("CEO <ceo@spoofed.test>"))
    assert info.value.reply.code == 550 and info.value.reply.enhanced == "5.7.1"
    assert "rejected by DMARC policy of spoofed.test" in info.value.reply.text
    # A signature by a domain that does not align does not help.
    with pytest.raises(SmtpError):
        await check(MX, env("x@lists.test"), signed(message("ceo@spoofed.test", "s"), "good.test"))
    assert check.rejected == 2
    # With dmarc_reject off the message is accepted and marked for quarantine instead.
    lenient = InboundAuthFilter(InboundAuthConfig(dmarc_reject=False), HOST, resolver)
    out = await lenient(MX, env("ceo@spoofed.test"), message("ceo@spoofed.test"))
    assert b"\r\nX-Hayate-Quarantine: dmarc\r\n" in out
    assert "dmarc=fail (p=REJECT dis=REJECT; no aligned SPF or DKIM pass; quarantined)" in (
        our_field(out))


async def test_dmarc_quarantine(resolver: CachingResolver) -> None:
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)
    forged = b"X-Hayate-Quarantine: no\r\n" + message("a@quar.test")
    out = await check(MX, env("a@quar.test"), forged)
    assert out.count(b"X-Hayate-Quarantine") == 1
    assert b"\r\nX-Hayate-Quarantine: dmarc\r\n" in out
    assert check.quarantined == 1
    off = InboundAuthFilter(InboundAuthConfig(dmarc_quarantine=False), HOST, resolver)
    out = await off(MX, env("a@quar.test"), message("a@quar.test"))
    assert b"X-Hayate-Quarantine" not in out
    assert "dmarc=fail (p=QUARANTINE dis=QUARANTINE" in our_field(out)


async def test_trusted_arc_sealer_overrides_reject(resolver: CachingResolver) -> None:
    config = InboundAuthConfig(trusted_arc_sealers=["Lists.Test"])
    check = InboundAuthFilter(config, HOST, resolver)
    msg = sealed(message("ceo@spoofed.test", "list"), "lists.test")
    out = await check(MX, env("bounce@lists.test"), msg)
    field = our_field(out)
    assert "arc=pass (i=1 d=lists.test)" in field
    assert "dmarc=fail" in field and "trusted lists.test" in field
    assert b"X-Hayate-Quarantine" not in out
    # The same chain sealed by a sealer we do not trust is refused.
    other = sealed(message("ceo@spoofed.test", "list2"), "shady.test")
    with pytest.raises(SmtpError):
        await check(MX, env("bounce@lists.test"), other)


async def test_dns_trouble_never_rejects(dns_server: TestDnsServer) -> None:
    resolver = CachingResolver([dns_server.address], timeout=1.0, failure_ttl=0.0)
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)
    # _dmarc.spoofed.test answers SERVFAIL on this server: the p=reject cannot be known.
    out = await check(MX, env("ceo@spoofed.test"), message("ceo@spoofed.test"))
    field = our_field(out)
    assert "spf=fail" in field
    assert "dmarc=temperror" in field and "header.from=spoofed.test" in field
    assert b"X-Hayate-Quarantine" not in out


async def test_forged_results_removed(resolver: CachingResolver) -> None:
    check = InboundAuthFilter(InboundAuthConfig(authserv_id="auth.us.test"), "mx.us.test",
                              resolver)
    msg = (b"Authentication-Results: auth.us.test; dmarc=pass header.from=good.test\r\n"
           b"Authentication-Results: elsewhere.test; spf=pass\r\n" + message("a@plain.test"))
    out = await check(MX, env("a@plain.test"), msg)
    assert out.startswith(b"Authentication-Results: auth.us.test;")
    assert out.count(b"auth.us.test;") == 1
    assert b"Authentication-Results: elsewhere.test; spf=pass\r\n" in out


async def test_only_outside_mail_on_the_mx_port(resolver: CachingResolver) -> None:
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)
    msg = message("ceo@spoofed.test")
    skipped = [
        SessionInfo(Listener.SUBMISSION, "127.0.0.1", auth_user="u@us.test"),
        SessionInfo(Listener.MX, "127.0.0.1", relay_allowed=True),
        SessionInfo(Listener.MX, "127.0.0.1", auth_user="u@us.test"),
        SessionInfo(Listener.LOCAL, "127.0.0.1"),
    ]
    for session in skipped:
        assert not from_outside(session)
        assert await check(session, env("ceo@spoofed.test"), msg) is msg
    disabled = InboundAuthFilter(InboundAuthConfig(enabled=False), HOST, resolver)
    assert await disabled(MX, env("ceo@spoofed.test"), msg) is msg
    assert check.checked == 0


async def test_nothing_published_is_cheap(
    resolver: CachingResolver, dns_server_ok: TestDnsServer
) -> None:
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)
    out = await check(MX, env("a@plain.test"), message("a@plain.test", "one"))
    field = our_field(out)
    assert "spf=none" in field and "dmarc=none" in field
    dns_server_ok.reset_counts()
    await check(MX, env("b@plain.test"), message("b@plain.test", "two"))
    assert dns_server_ok.queries == 0  # NODATA / NXDOMAIN answers came from the cache


def test_decide() -> None:
    check = InboundAuthFilter(InboundAuthConfig(trusted_arc_sealers=["fwd.test"]), HOST,
                              resolver=None)  # type: ignore[arg-type]
    fail = DmarcResult("fail", "x.test", "reject", "reject", "x.test")
    none = ArcVerdict("none")
    assert check.decide(fail, none) == ("reject", "")
    assert check.decide(DmarcResult("pass", "x.test", "reject"), none) == ("accept", "")
    assert check.decide(DmarcResult("temperror", "x.test"), none) == ("accept", "")
    soft = DmarcResult("fail", "x.test", "reject", "quarantine", "x.test")
    assert check.decide(soft, none) == ("quarantine", "quarantined")
    monitor = DmarcResult("fail", "x.test", "none", "none", "x.test")
    assert check.decide(monitor, none) == ("accept", "")
    assert check.decide(fail, ArcVerdict("pass", 1, "fwd.test"))[0] == "accept"
    assert check.decide(fail, ArcVerdict("fail", 1, "fwd.test"))[0] == "reject"
    assert check.decide(fail, ArcVerdict("pass", 1, "other.test"))[0] == "reject"


# -- the HELO identity (RFC 7208 2.3, 2.4) ------------------------------------------------


def session(helo: str) -> SessionInfo:
    return SessionInfo(Listener.MX, peer_ip="127.0.0.1", peer_port=4000, helo=helo)


def spf_entries(field: str) -> list[str]:
    return [part.strip() for part in field.split(";") if part.strip().startswith("spf=")]


@pytest.mark.parametrize(
    ("helo", "expected"),
    [
        ("mx.helo.test", "spf=pass (ip4:127.0.0.1 matched) smtp.helo=mx.helo.test"),
        ("MX.Helo.Test.", "spf=pass (ip4:127.0.0.1 matched) smtp.helo=mx.helo.test"),
        ("bad.helo.test", "spf=fail (-all matched) smtp.helo=bad.helo.test"),
        ("broken.helo.test", "spf=permerror (broken.helo.test: unknown mechanism 'bogus:x') "
                             "smtp.helo=broken.helo.test"),
        ("client.good.test", "spf=none (no SPF record) smtp.helo=client.good.test"),
    ],
)
async def test_helo_result_is_a_second_spf_entry(
    resolver: CachingResolver, helo: str, expected: str
) -> None:
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)
    out = await check(session(helo), env("alice@good.test"), message("alice@good.test"))
    field = our_field(out)
    assert spf_entries(field) == [
        "spf=pass (ip4:127.0.0.1 matched) smtp.mailfrom=good.test", expected
    ]
    assert "dmarc=pass" in field  # the HELO result does not change DMARC


@pytest.mark.parametrize("helo", ["[127.0.0.1]", "[IPv6:::1]", "127.0.0.1", "localhost", ""])
async def test_helo_that_is_not_a_domain_is_not_checked(
    resolver: CachingResolver, dns_server_ok: TestDnsServer, helo: str
) -> None:
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)
    await check(session("mx.helo.test"), env("a@good.test"), message("a@good.test", "warm"))
    dns_server_ok.reset_counts()  # every name of good.test is cached now
    out = await check(session(helo), env("a@good.test"), message("a@good.test", "cold"))
    assert spf_entries(our_field(out)) == [
        "spf=pass (ip4:127.0.0.1 matched) smtp.mailfrom=good.test"
    ]
    assert dns_server_ok.queries == 0  # nothing was looked up for the HELO name


async def test_dmarc_ignores_a_passing_helo_when_mail_from_fails(
    resolver: CachingResolver,
) -> None:
    # MAIL FROM spoofed.test fails SPF; a HELO that passes and even aligns with the From
    # domain must not rescue it: DMARC uses the MAIL FROM identity.
    check = InboundAuthFilter(InboundAuthConfig(dmarc_reject=False), HOST, resolver)
    out = await check(session("mx.helo.test"), env("ceo@spoofed.test"),
                      message("ceo@helo.test", "spoof"))
    field = our_field(out)
    assert spf_entries(field) == [
        "spf=fail (-all matched) smtp.mailfrom=spoofed.test",
        "spf=pass (ip4:127.0.0.1 matched) smtp.helo=mx.helo.test",
    ]
    assert "dmarc=fail (p=REJECT dis=REJECT; no aligned SPF or DKIM pass" in field


@pytest.mark.parametrize(
    ("helo", "spf", "dmarc"),
    [
        ("mx.helo.test", "spf=pass (ip4:127.0.0.1 matched) smtp.helo=mx.helo.test", "pass"),
        ("bad.helo.test", "spf=fail (-all matched) smtp.helo=bad.helo.test", "fail"),
    ],
)
async def test_null_sender_takes_the_helo_result(
    resolver: CachingResolver, helo: str, spf: str, dmarc: str
) -> None:
    # A bounce: MAIL FROM:<>. The HELO check is the message's SPF result (one entry), and
    # DMARC aligns it with the From domain (mx.helo.test is below helo.test: relaxed).
    check = InboundAuthFilter(InboundAuthConfig(dmarc_reject=False), HOST, resolver)
    out = await check(session(helo), env(""), message("MAILER-DAEMON@helo.test", "dsn"))
    field = our_field(out)
    assert spf_entries(field) == [spf]
    assert f"dmarc={dmarc}" in field


async def test_helo_check_that_crashes_is_temperror(
    resolver: CachingResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("hayate.auth.inbound.check_helo", broken)
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)
    out = await check(session("mx.helo.test"), env("a@good.test"), message("a@good.test"))
    assert spf_entries(our_field(out))[1] == (
        r"spf=temperror (internal error: RuntimeError\('boom'\)) smtp.helo=mx.helo.test")
