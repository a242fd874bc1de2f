"""Inbound checks end to end: smtplib → our SMTP server (MX listener) → Ingest with the
InboundAuthFilter → the spool, with a real DNS server on 127.0.0.1 and dkimpy signatures.

The stored message carries Authentication-Results; a p=reject domain failing DMARC gets
550 5.7.1 at the end of DATA, nothing is stored, and the same connection goes on working.
The name the client gives in EHLO is checked with SPF too (a second spf= with smtp.helo);
for a bounce (MAIL FROM:<>) that check is the message's SPF result, which DMARC uses."""

from __future__ import annotations

import asyncio
import base64
import re
import smtplib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.support.dnsserver import TestDnsServer, zone_text

from hayate.auth.inbound import InboundAuthFilter
from hayate.config import InboundAuthConfig
from hayate.core.envelope import Listener, SessionInfo, domain_of
from hayate.core.reply import SmtpReply
from hayate.dns import CachingResolver
from hayate.ingest.ingest import Ingest
from hayate.ingest.routing import Router
from hayate.smtp.server import SmtpServerSettings, start_smtp_server
from hayate.store.spool import Spool

pytestmark = pytest.mark.timeout(60)

HOST = "mx.us.test"


def _key() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    text = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    return pem, " ".join(f'"{text[i:i + 250]}"' for i in range(0, len(text), 250))


PEM, KEY_RECORD = _key()

ZONES = {
    "good.test": zone_text(
        '@ TXT "v=spf1 ip4:127.0.0.1 -all"\n_dmarc TXT "v=DMARC1; p=reject"\n'
        f"sel._domainkey TXT {KEY_RECORD}"
    ),
    "spoofed.test": zone_text('@ TXT "v=spf1 ip4:192.0.2.1 -all"\n'
                              '_dmarc TXT "v=DMARC1; p=reject"'),
    "quar.test": zone_text('@ TXT "v=spf1 -all"\n_dmarc TXT "v=DMARC1; p=quarantine"'),
    "relay.test": zone_text('out TXT "v=spf1 ip4:127.0.0.0/8 -all"\n'
                            'stranger TXT "v=spf1 ip4:192.0.2.0/24 -all"\n'
                            '_dmarc TXT "v=DMARC1; p=reject"'),
}


class LocalOnly:
    """SmtpPolicy: mail for us.test only, no accounts."""

    async def authenticate(self, username: str, password: str) -> str | None:
        return None

    async def check_sender(self, session: SessionInfo, sender: str) -> SmtpReply | None:
        return None

    async def check_recipient(
        self,
        session: SessionInfo,
        sender: str,
        recipient: str,
        declared_size: int | None = None,
    ) -> SmtpReply | None:
        if domain_of(recipient) == "us.test":
            return None
        return SmtpReply(554, "5.7.1", "Relay access denied")


@dataclass
class Mx:
    port: int
    spool: Spool
    check: InboundAuthFilter

    def stored(self, reply: bytes) -> bytes:
        """The spooled message named by a ``250 ... queued as ID`` reply."""
        match = re.search(rb"queued as (\S+)", reply)
        assert match is not None, reply
        data = self.spool.message_data(match.group(1).decode())
        assert data is not None
        return data


@pytest.fixture(scope="module")
def dns_server() -> Iterator[TestDnsServer]:
    with TestDnsServer(ZONES) as server:
        yield server


@pytest.fixture
async def mx(dns_server: TestDnsServer, tmp_path: Path) -> AsyncIterator[Mx]:
    spool = Spool(tmp_path / "shard-0.db")
    spool.committer.start()
    resolver = CachingResolver([dns_server.address], timeout=2.0)
    check = InboundAuthFilter(InboundAuthConfig(), HOST, resolver)

    async def same(address: str) -> list[str]:
        return [address]

    ingest = Ingest(hostname=HOST, spool=spool, router=Router(["us.test"], []),
                    expand_alias=same, filters=[check])
    server = await start_smtp_server(SmtpServerSettings(HOST, Listener.MX), LocalOnly(), ingest)
    try:
        yield Mx(server.port, spool, check)
    finally:
        server.close()
        await server.wait_closed()
        await spool.committer.stop()
        spool.close()


def message(from_: str, subject: str) -> bytes:
    return (f"From: {from_}\r\nTo: bob@us.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@sender>\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\n"
            "\r\nHello Bob.\r\n").encode()


def signed(msg: bytes) -> bytes:
    return bytes(dkim.sign(msg, b"sel", b"good.test", PEM, canonicalize=(b"relaxed", b"relaxed"),
                           include_headers=[b"from", b"to", b"subject", b"message-id"])) + msg


def send(
    port: int, transactions: list[tuple[str, bytes]], helo: str = "client.good.test"
) -> list[tuple[int, bytes]]:
    """Each (sender, message) over ONE connection; the DATA reply of each."""
    replies: list[tuple[int, bytes]] = []
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=10) as c:
        c.ehlo()
        for sender, msg in transactions:
            code, text = c.mail(sender)
            assert code == 250, text
            code, text = c.rcpt("bob@us.test")
            assert code == 250, text
            replies.append(c.data(msg))
    return replies


async def test_stored_message_carries_authentication_results(mx: Mx) -> None:
    msg = signed(message("Alice <alice@good.test>", "signed"))
    [(code, reply)] = await asyncio.to_thread(send, mx.port, [("alice@good.test", msg)])
    assert code == 250, reply
    data = mx.stored(reply)
    assert data.endswith(msg)
    head = data[: data.index(b"\r\n\r\n")].decode()
    assert head.startswith(f"Authentication-Results: {HOST};\r\n\tspf=pass")
    unfolded = head.replace("\r\n", "").replace("\t", " ")
    assert "spf=pass (ip4:127.0.0.1 matched) smtp.mailfrom=good.test;" in unfolded
    assert "dkim=pass header.d=good.test header.s=sel header.a=rsa-sha256 header.b=" in unfolded
    assert "dmarc=pass (p=REJECT) header.from=good.test; arc=none" in unfolded
    # Ours comes above the Received field that ingest added, as RFC 8601 asks.
    assert head.index("Authentication-Results:") < head.index("Received:")


async def test_dmarc_reject_at_end_of_data_and_the_session_goes_on(mx: Mx) -> None:
    spoofed = message("The CEO <ceo@spoofed.test>", "wire-money")
    quarantined = message("a@quar.test", "maybe")
    good = message("alice@good.test", "fine")
    replies = await asyncio.to_thread(
        send, mx.port,
        [("ceo@spoofed.test", spoofed), ("a@quar.test", quarantined), ("alice@good.test", good)],
    )
    (code1, text1), (code2, text2), (code3, text3) = replies
    assert code1 == 550
    assert text1 == b"5.7.1 Message rejected by DMARC policy of spoofed.test"
    assert code2 == 250 and code3 == 250
    kept = mx.stored(text2)
    assert b"\r\nX-Hayate-Quarantine: dmarc\r\n" in kept
    assert b"dmarc=fail (p=QUARANTINE dis=QUARANTINE" in kept
    assert b"dmarc=pass" in mx.stored(text3)
    count = mx.spool.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert count == 2  # the refused message was never spooled
    assert (mx.check.checked, mx.check.rejected, mx.check.quarantined) == (3, 1, 1)


def results_of(data: bytes) -> list[str]:
    """The methods of our Authentication-Results field, unfolded."""
    head = data[: data.index(b"\r\n\r\n")].decode()
    assert head.startswith(f"Authentication-Results: {HOST};")
    field = head.split("\r\n")[0]
    for line in head.split("\r\n")[1:]:
        if not line.startswith("\t"):
            break
        field += " " + line.strip()
    return [part.strip() for part in field.split(";")[1:]]


async def test_helo_name_is_checked_and_reported(mx: Mx) -> None:
    msg = message("alice@good.test", "helo-checked")
    [(code, reply)] = await asyncio.to_thread(send, mx.port, [("alice@good.test", msg)],
                                              "out.relay.test")
    assert code == 250, reply
    methods = results_of(mx.stored(reply))
    assert methods[:2] == [
        "spf=pass (ip4:127.0.0.1 matched) smtp.mailfrom=good.test",
        "spf=pass (ip4:127.0.0.0/8 matched) smtp.helo=out.relay.test",
    ]
    assert "dmarc=pass (p=REJECT) header.from=good.test" in methods


async def test_address_literal_helo_is_not_checked(mx: Mx) -> None:
    msg = message("alice@good.test", "literal")
    [(code, reply)] = await asyncio.to_thread(send, mx.port, [("alice@good.test", msg)],
                                              "[127.0.0.1]")
    assert code == 250, reply
    spf = [m for m in results_of(mx.stored(reply)) if m.startswith("spf=")]
    assert spf == ["spf=pass (ip4:127.0.0.1 matched) smtp.mailfrom=good.test"]


async def test_bounce_takes_the_helo_result_for_dmarc(mx: Mx) -> None:
    # MAIL FROM:<> from a host whose HELO name passes SPF: the DSN's From domain aligns
    # with it (relaxed), so DMARC passes on SPF alone.
    dsn = message("Mail Delivery System <MAILER-DAEMON@relay.test>", "dsn-ok")
    # The same bounce from a host whose HELO name does not allow 127.0.0.1: refused.
    forged = message("Mail Delivery System <MAILER-DAEMON@relay.test>", "dsn-forged")
    [(code, reply)] = await asyncio.to_thread(send, mx.port, [("", dsn)], "out.relay.test")
    assert code == 250, reply
    methods = results_of(mx.stored(reply))
    assert [m for m in methods if m.startswith("spf=")] == [
        "spf=pass (ip4:127.0.0.0/8 matched) smtp.helo=out.relay.test"
    ]
    assert "dmarc=pass (p=REJECT) header.from=relay.test" in methods
    [(code, reply)] = await asyncio.to_thread(send, mx.port, [("", forged)],
                                              "stranger.relay.test")
    assert (code, reply) == (550, b"5.7.1 Message rejected by DMARC policy of relay.test")
