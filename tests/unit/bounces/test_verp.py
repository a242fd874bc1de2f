"""VERP return paths: round trips, the 64-octet limit, forgery, the key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hayate.bounces.verp import MAX_LOCAL, VerpCodec, load_or_create_secret

QID = "18A3F2C5D9E01A7B0"
SECRET = b"s" * 32


@pytest.fixture
def codec() -> VerpCodec:
    return VerpCodec("Bounce.Example.COM.", SECRET)


@pytest.mark.parametrize(
    "recipient",
    [
        "bob@example.net",
        "John.Smith+news@Example.com",
        "o'hara=x_y@example.org",
        "ünïcode@example.de",
        "a@b",
    ],
)
def test_round_trip_within_64_octets(codec: VerpCodec, recipient: str) -> None:
    address = codec.for_recipient(QID, "news@example.com", recipient)
    assert address is not None
    local, domain = address.split("@")
    assert domain == "bounce.example.com"
    assert len(local.encode()) <= MAX_LOCAL
    assert local.startswith("b-") and local == local.lower()
    assert all(ch.isalnum() or ch == "-" for ch in local) and local.isascii()
    decoded = codec.decode(address)
    assert decoded is not None
    assert (decoded.queue_id, decoded.recipient) == (QID, recipient.lower())
    # Mail servers may change the case of the local part or the domain.
    assert codec.decode(address.upper()) == decoded
    assert codec.decode(f"<{address}>") == decoded


def test_non_hex_queue_ids_work_too(codec: VerpCodec) -> None:
    address = codec.for_recipient("abc-12", "s@example.com", "x@example.net")
    assert address is not None
    decoded = codec.decode(address)
    assert decoded is not None and decoded.queue_id == "abc-12"


def test_long_recipient_falls_back_to_a_digest(codec: VerpCodec) -> None:
    long_rcpt = "very.long.firstname.lastname.department@subdivision.example.co.jp"
    address = codec.for_recipient(QID, "s@example.com", long_rcpt)
    assert address is not None and len(address.split("@")[0]) <= MAX_LOCAL
    decoded = codec.decode(address)
    assert decoded is not None
    assert decoded.queue_id == QID and decoded.recipient is None
    assert decoded.matches(long_rcpt.upper())
    assert not decoded.matches("other@subdivision.example.co.jp")


def test_null_sender_and_verp_off_keep_the_sender(codec: VerpCodec) -> None:
    assert codec.for_recipient(QID, "", "bob@example.net") is None
    off = VerpCodec("bounce.example.com", SECRET, enabled=False)
    assert off.for_recipient(QID, "s@example.com", "bob@example.net") is None


def test_forged_and_modified_tokens_are_refused(codec: VerpCodec) -> None:
    address = codec.for_recipient(QID, "s@example.com", "bob@example.net")
    assert address is not None
    local, domain = address.split("@")
    # Every single-character change of the token is caught by the MAC or the decoding.
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for i in range(2, len(local)):
        for ch in "a7q":
            if local[i] != ch:
                changed = local[:i] + ch + local[i + 1 :]
                assert codec.decode(f"{changed}@{domain}") is None, (i, ch)
    assert codec.decode(f"{local}@other.example") is None
    assert codec.decode(f"x-{local[2:]}@{domain}") is None
    assert codec.decode(f"b-@{domain}") is None
    assert codec.decode(f"b-{'!' * 20}@{domain}") is None
    assert codec.decode("no-at-sign") is None
    other_key = VerpCodec("bounce.example.com", b"t" * 32)
    assert other_key.decode(address) is None
    # A token made with another key, then re-signed nowhere: no way to mint one.
    assert all(c in alphabet for c in local[2:])


def test_secret_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "verp.key"
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    short = tmp_path / "short.key"
    short.write_bytes(b"abc")
    with pytest.raises(ValueError, match="too short"):
        load_or_create_secret(short)


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        VerpCodec("bounce.example.com", b"short")


def test_codec_from_config(tmp_path: Path) -> None:
    from hayate.bounces.verp import codec_from_config
    from hayate.config import BouncesConfig

    assert codec_from_config(BouncesConfig(), tmp_path) is None
    codec = codec_from_config(BouncesConfig(domain="bounce.example.com"), tmp_path)
    assert codec is not None and (tmp_path / "verp.key").exists()
    address = codec.for_recipient(QID, "s@example.com", "bob@example.net")
    assert address is not None
    off = codec_from_config(BouncesConfig(domain="bounce.example.com", verp=False), tmp_path)
    assert off is not None and off.for_recipient(QID, "s@example.com", "x@example.net") is None
    assert off.decode(address) is not None  # same key: earlier tokens still decode
