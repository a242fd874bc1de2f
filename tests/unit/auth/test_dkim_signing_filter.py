"""The ingest filter: which mail gets signed, with which domain's keys, and that it never
refuses a message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dkim
import pytest

from hayate.auth.dkim_keys import DkimKeyStore, dns_record
from hayate.auth.signing import DkimSigningFilter, from_domain
from hayate.config import DkimConfig
from hayate.core.envelope import Envelope, Listener, SessionInfo


class FixedClock:
    def __init__(self, now: float) -> None:
        self.t = now

    def now(self) -> float:
        return self.t


SUBMISSION = SessionInfo(Listener.SUBMISSION, "192.0.2.7", auth_user="alice@example.com")
MX_OUTSIDE = SessionInfo(Listener.MX, "198.51.100.9")
MX_RELAY_NET = SessionInfo(Listener.MX, "10.0.0.5", relay_allowed=True)
MX_AUTHED = SessionInfo(Listener.MX, "198.51.100.9", auth_user="alice@example.com")
LOCAL = SessionInfo(Listener.LOCAL, "127.0.0.1")
ENV = Envelope("alice@example.com", ("bob@example.net",))


def message(from_header: bytes = b"Alice <alice@example.com>") -> bytes:
    return b"From: " + from_header + b"\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> DkimKeyStore:
    s = DkimKeyStore(tmp_path_factory.mktemp("dkim"))
    s.generate("example.com", "rsa", "r1", bits=1024)
    s.generate("example.com", "ed25519", "e1")
    s.generate("other.org", "ed25519", "o1")
    return s


def dnsfunc(store: DkimKeyStore) -> Callable[..., bytes]:
    records = dict(dns_record(k) for d in store.domains() for k in store.keys(d))
    return lambda name, timeout=5: records.get(name.decode().rstrip("."), "").encode()


def signers(signed: bytes, store: DkimKeyStore) -> list[str]:
    """d/s of each DKIM-Signature, top first, after checking that each verifies."""
    d = dkim.DKIM(signed)
    out = []
    for i in range(signed.count(b"DKIM-Signature:")):
        assert d.verify(idx=i, dnsfunc=dnsfunc(store))
        out.append(f"{d.domain.decode()}/{d.selector.decode()}")
    return out


@pytest.mark.parametrize("session", [SUBMISSION, MX_RELAY_NET, MX_AUTHED, LOCAL])
async def test_outbound_mail_is_dual_signed(store: DkimKeyStore, session: SessionInfo) -> None:
    filt = DkimSigningFilter(DkimConfig(), store, clock=FixedClock(1_794_000_000))
    original = message()
    signed = await filt(session, ENV, original)
    assert signed.endswith(original)
    assert signers(signed, store) == ["example.com/r1", "example.com/e1"]
    assert b"t=1794000000;" in signed
    assert filt.signed == 1


async def test_mail_from_outside_on_mx_is_not_signed(store: DkimKeyStore) -> None:
    filt = DkimSigningFilter(DkimConfig(), store)
    original = message()
    assert await filt(MX_OUTSIDE, ENV, original) is original


async def test_signing_off_in_config(store: DkimKeyStore) -> None:
    filt = DkimSigningFilter(DkimConfig(sign=False), store)
    original = message()
    assert await filt(SUBMISSION, ENV, original) is original


async def test_subdomain_uses_parent_key(store: DkimKeyStore) -> None:
    filt = DkimSigningFilter(DkimConfig(), store)
    signed = await filt(SUBMISSION, ENV, message(b"<news@mail.News.Example.com>"))
    assert signers(signed, store) == ["example.com/r1", "example.com/e1"]


async def test_from_domain_first_then_envelope_sender(store: DkimKeyStore) -> None:
    filt = DkimSigningFilter(DkimConfig(), store)
    # From has a key: it wins over the envelope sender's domain
    signed = await filt(SUBMISSION, Envelope("x@example.com", ("b@x.test",)),
                        message(b"o@other.org"))
    assert signers(signed, store) == ["other.org/o1"]
    # From has no key: the envelope sender's domain signs
    signed = await filt(SUBMISSION, Envelope("bounce@other.org", ("b@x.test",)),
                        message(b"someone@nokey.test"))
    assert signers(signed, store) == ["other.org/o1"]


async def test_no_key_anywhere_passes_unchanged(store: DkimKeyStore) -> None:
    filt = DkimSigningFilter(DkimConfig(), store)
    original = message(b"a@nokey.test")
    assert await filt(SUBMISSION, Envelope("a@nokey.test", ("b@x.test",)), original) is original


async def test_unsignable_message_passes_unchanged(store: DkimKeyStore) -> None:
    filt = DkimSigningFilter(DkimConfig(), store)
    original = b"Subject: no from header\r\n\r\nbody\r\n"
    assert await filt(SUBMISSION, ENV, original) is original  # envelope domain has keys
    assert filt.failed == 1 and filt.signed == 0


@pytest.mark.parametrize(
    ("header", "domain"),
    [
        (b"From: Alice <alice@Example.COM>", "example.com"),
        (b'From: "bob@evil.test" <alice@example.com>', "example.com"),
        (b"From: alice@example.com (Alice)", "example.com"),
        (b"From:\r\n Alice\r\n <alice@example.com.>", "example.com"),
        (b"from : a@b.example", "b.example"),
        (b"From: undisclosed", ""),
        (b"To: x@y.test", ""),
    ],
)
def test_from_domain(header: bytes, domain: str) -> None:
    assert from_domain(b"X-A: 1\r\n" + header + b"\r\n\r\nFrom: body@not.this\r\n") == domain


def test_no_keys_dir(tmp_path: Path) -> None:
    filt = DkimSigningFilter(DkimConfig(), DkimKeyStore(tmp_path / "missing"))
    assert filt.keys_for("example.com") == ()
