"""The DKIM key store: files and modes, DNS records, default selectors, rotation, states."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from hayate.auth.dkim_keys import DkimKeyError, DkimKeyStore, dns_record, txt_strings

NOV_2026 = 1_794_000_000.0  # 2026-11-07


def test_generate_rsa_writes_pkcs8_0600_and_metadata(tmp_path: Path) -> None:
    store = DkimKeyStore(tmp_path)
    key = store.generate("Example.COM.", "rsa", now=NOV_2026)
    assert (key.domain, key.selector, key.algorithm, key.state) == (
        "example.com", "hy202611r", "rsa", "active"
    )
    pem = tmp_path / "example.com" / "hy202611r.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    meta = json.loads((tmp_path / "example.com" / "hy202611r.json").read_text())
    assert meta == {"algorithm": "rsa", "created": NOV_2026, "state": "active"}
    assert key.bits == 2048

    name, value = dns_record(key)
    assert name == "hy202611r._domainkey.example.com"
    assert value.startswith("v=DKIM1; k=rsa; p=MIIB")
    public = serialization.load_der_public_key(base64.b64decode(value.split("p=")[1]))
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == key.private_key.public_key().public_numbers()


def test_generate_ed25519_record_is_raw_32_bytes(tmp_path: Path) -> None:
    key = DkimKeyStore(tmp_path).generate("example.com", "ed25519", now=NOV_2026)
    assert key.selector == "hy202611e"
    _, value = dns_record(key)
    assert value.startswith("v=DKIM1; k=ed25519; p=")
    raw = base64.b64decode(value.split("p=")[1])
    assert len(raw) == 32
    assert isinstance(key.private_key, ed25519.Ed25519PrivateKey)


def test_default_selectors_are_unique(tmp_path: Path) -> None:
    store = DkimKeyStore(tmp_path)
    sels = [store.generate("example.com", "ed25519", now=NOV_2026).selector for _ in range(3)]
    assert sels == ["hy202611e", "hy202611e2", "hy202611e3"]


def test_rotation_keeps_old_key_published(tmp_path: Path) -> None:
    store = DkimKeyStore(tmp_path)
    old = store.generate("example.com", "rsa", "old", bits=1024)
    ed = store.generate("example.com", "ed25519", "ed")
    assert [k.selector for k in store.signing_keys("example.com")] == ["old", "ed"]  # dual
    new = store.generate("example.com", "rsa", "new", bits=1024)
    assert [k.selector for k in store.signing_keys("example.com")] == ["new", "ed"]
    states = {k.selector: k.state for k in store.keys("example.com")}
    assert states == {"old": "published", "ed": "active", "new": "active"}

    # what is on disk agrees (a fresh store reads it back)
    again = DkimKeyStore(tmp_path)
    assert {k.selector: k.state for k in again.keys("example.com")} == states
    assert again.get("example.com", "new").private_key.private_numbers() == (
        new.private_key.private_numbers()  # type: ignore[union-attr]
    )
    store.set_state("example.com", old.selector, "retired")
    assert DkimKeyStore(tmp_path).get("example.com", "old").state == "retired"
    assert ed.state == "active"


def test_publish_only_then_activate(tmp_path: Path) -> None:
    store = DkimKeyStore(tmp_path)
    store.generate("example.com", "ed25519", "cur")
    nxt = store.generate("example.com", "ed25519", "next", activate=False)
    assert nxt.state == "published"
    assert [k.selector for k in store.signing_keys("example.com")] == ["cur"]
    store.activate("example.com", "next")
    assert [k.selector for k in store.signing_keys("example.com")] == ["next"]
    assert store.get("example.com", "cur").state == "published"


def test_keys_are_read_once_and_cached(tmp_path: Path) -> None:
    DkimKeyStore(tmp_path).generate("example.com", "ed25519", "s1")
    store = DkimKeyStore(tmp_path)
    assert len(store.signing_keys("example.com")) == 1
    for f in (tmp_path / "example.com").iterdir():
        f.unlink()
    assert len(store.signing_keys("example.com")) == 1  # still served from memory
    store.reload()
    assert store.signing_keys("example.com") == ()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.generate("../etc", "rsa"), "not a domain name"),
        (lambda s: s.generate("example.com", "dsa"), "unknown algorithm"),
        (lambda s: s.generate("example.com", "rsa", bits=512), "key size"),
        (lambda s: s.generate("example.com", "rsa", selector="bad/sel"), "not a valid selector"),
        (lambda s: s.generate("example.com", "ed25519", selector="s1"), "already exists"),
        (lambda s: s.get("other.com", "s1"), "no DKIM keys for domain other.com"),
        (lambda s: s.get("example.com", "nope"), "no DKIM key with selector"),
        (lambda s: s.set_state("example.com", "s1", "gone"), "unknown state"),
    ],
)
def test_errors_are_readable(tmp_path: Path, call: object, message: str) -> None:
    store = DkimKeyStore(tmp_path)
    store.generate("example.com", "ed25519", "s1")
    with pytest.raises(DkimKeyError, match=message):
        call(store)  # type: ignore[operator]


def test_broken_key_file_is_reported(tmp_path: Path) -> None:
    DkimKeyStore(tmp_path).generate("example.com", "ed25519", "s1")
    (tmp_path / "example.com" / "s1.pem").write_text("garbage")
    with pytest.raises(DkimKeyError, match="cannot read DKIM key"):
        DkimKeyStore(tmp_path).domains()


def test_txt_strings_split_at_255() -> None:
    value = "v=DKIM1; k=rsa; p=" + "A" * 392
    parts = txt_strings(value)
    assert [len(p) for p in parts] == [255, 155]
    assert "".join(parts) == value
