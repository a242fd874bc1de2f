"""Signatures made by our signer verify with dkimpy; changes in transit break them or not,
as relaxed canonicalization says."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest

from hayate.auth.dkim_keys import DkimKey, DkimKeyStore, dns_record
from hayate.auth.dkim_sign import DkimSigner, DkimSignError
from hayate.config import DkimConfig

MESSAGE = (
    b"Received: from client (client [192.0.2.7])\r\n\tby mx.example.com; Tue, 3 Nov 2026\r\n"
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.net,\r\n  carol@example.net\r\n"
    b"Subject:  Quarterly   report\t\r\n"
    b"Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"\r\n"
    b"Hello  Bob,\t\r\n"
    b"\r\n"
    b"the numbers are in. \r\n"
    b"\r\n\r\n"
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DkimKey]:
    store = DkimKeyStore(tmp_path_factory.mktemp("dkim"))
    return {
        "rsa": store.generate("example.com", "rsa", "rsa1"),
        "ed25519": store.generate("example.com", "ed25519", "ed1"),
    }


def dnsfunc_for(keys: dict[str, DkimKey]) -> Callable[..., bytes]:
    records = dict(dns_record(k) for k in keys.values())

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        return records.get(name.decode().rstrip("."), "").encode()

    return dnsfunc


def sign(message: bytes, *ks: DkimKey, expire_after: float | None = None) -> bytes:
    cfg = DkimConfig()
    signer = DkimSigner(cfg.headers, cfg.oversign, expire_after)
    return signer.sign(message, ks, time.time()) + message


def dkimpy_ok(message: bytes, keys: dict[str, DkimKey], idx: int = 0) -> bool:
    try:
        return bool(dkim.DKIM(message).verify(idx=idx, dnsfunc=dnsfunc_for(keys)))
    except dkim.DKIMException:  # e.g. "body hash mismatch"
        return False


@pytest.mark.parametrize("algo", ["rsa", "ed25519"])
def test_signature_verifies_with_dkimpy(keys: dict[str, DkimKey], algo: str) -> None:
    signed = sign(MESSAGE, keys[algo])
    assert signed.startswith(b"DKIM-Signature: v=1; a=" + keys[algo].signature_algorithm.encode())
    assert dkimpy_ok(signed, keys)


def test_dual_signing_both_verify(keys: dict[str, DkimKey]) -> None:
    signed = sign(MESSAGE, keys["rsa"], keys["ed25519"])
    assert signed.count(b"DKIM-Signature:") == 2
    assert dkimpy_ok(signed, keys, 0) and dkimpy_ok(signed, keys, 1)


def _tags(signed: bytes) -> dict[str, str]:
    header = signed.split(b"\r\n\r\n")[0].split(b"DKIM-Signature:")[1]
    header = header.split(b"\r\nReceived")[0]
    flat = re.sub(rb"\s+", b"", header).decode()
    return dict(t.split("=", 1) for t in flat.split(";") if t)


def test_tags_and_header_list(keys: dict[str, DkimKey]) -> None:
    tags = _tags(sign(MESSAGE, keys["ed25519"], expire_after=3600))
    assert tags["c"] == "relaxed/relaxed"
    assert tags["d"] == "example.com" and tags["s"] == "ed1"
    assert "l" not in tags
    assert int(tags["x"]) - int(tags["t"]) == 3600
    listed = tags["h"].split(":")
    assert listed.count("from") == 2  # present once, over-signed once
    assert listed.count("to") == 2 and listed.count("subject") == 2 and listed.count("date") == 2
    assert listed.count("list-unsubscribe") == 1  # absent, over-signed: cannot be added
    assert listed.count("message-id") == 1  # signed, not over-signed
    assert "received" not in listed and "cc" not in listed  # not signed / absent
    lines = sign(MESSAGE, keys["rsa"]).split(b"\r\n\r\n")[0].split(b"\r\n")
    assert max(len(line) for line in lines) <= 78


def test_no_expiry_by_default(keys: dict[str, DkimKey]) -> None:
    tags = _tags(sign(MESSAGE, keys["ed25519"]))
    assert "t" in tags and "x" not in tags


def _replace_once(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def change(m: bytes) -> bytes:
        assert old in m
        return m.replace(old, new, 1)

    return change


TAMPERING = {
    "body changed": _replace_once(b"numbers are in", b"numbers are out"),
    "subject changed": _replace_once(b"Quarterly   report", b"Quarterly report!"),
    "from added on top": lambda m: b"From: Mallory <m@evil.test>\r\n" + m,
    "second subject added": _replace_once(b"\r\n\r\nHello", b"\r\nSubject: new\r\n\r\nHello"),
    "to added": _replace_once(b"\r\n\r\nHello", b"\r\nTo: eve@evil.test\r\n\r\nHello"),
    "list-unsubscribe added": lambda m: b"List-Unsubscribe: <mailto:x@evil.test>\r\n" + m,
    "line appended to body": lambda m: m + b"P.S. click here\r\n",
}


@pytest.mark.parametrize("algo", ["rsa", "ed25519"])
@pytest.mark.parametrize("change", sorted(TAMPERING))
def test_changed_in_transit_fails(keys: dict[str, DkimKey], algo: str, change: str) -> None:
    signed = sign(MESSAGE, keys[algo])
    assert dkimpy_ok(signed, keys)
    assert not dkimpy_ok(TAMPERING[change](signed), keys)


HARMLESS = {
    "headers refolded": _replace_once(b"bob@example.net,\r\n  carol", b"bob@example.net, carol"),
    "whitespace in body": _replace_once(b"Hello  Bob,\t", b"Hello Bob,"),
    "trailing empty lines dropped": lambda m: m.rstrip(b"\r\n") + b"\r\n",
    "trailing empty lines added": lambda m: m + b"\r\n\r\n",
    "header name case": _replace_once(b"Subject:", b"SUBJECT:"),
    "unsigned header added": lambda m: b"X-Spam-Score: 0.1\r\nReceived: from relay\r\n" + m,
}


@pytest.mark.parametrize("change", sorted(HARMLESS))
def test_relaxed_changes_still_verify(keys: dict[str, DkimKey], change: str) -> None:
    assert dkimpy_ok(HARMLESS[change](sign(MESSAGE, keys["rsa"])), keys)


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@example.com\r\nSubject: no body\r\n\r\n",
        b"From: a@example.com\r\nSubject: no final CRLF\r\n\r\nlast line  ",
        b"From: a@example.com\r\n\r\n\r\n\r\n",
        b"From:\r\n a@example.com\r\nSubject: folded from\r\n\r\nx\r\n",
    ],
)
def test_edge_messages_verify(keys: dict[str, DkimKey], message: bytes) -> None:
    signed = sign(message, keys["ed25519"])
    # what arrives after SMTP: the data always ends with a line break
    arrived = signed if signed.endswith(b"\r\n") else signed + b"\r\n"
    assert dkimpy_ok(arrived, keys)


def test_message_without_from_is_refused(keys: dict[str, DkimKey]) -> None:
    with pytest.raises(DkimSignError, match="no From"):
        sign(b"Subject: x\r\n\r\nbody\r\n", keys["rsa"])


def test_no_keys_no_header(tmp_path: Path) -> None:
    assert DkimSigner(["from"]).sign(MESSAGE, [], 0.0) == b""
