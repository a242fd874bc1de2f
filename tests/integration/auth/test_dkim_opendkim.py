"""Our signatures checked by an independent verifier: OpenDKIM 2.11 (Debian ``opendkim``).

``opendkim -t FILE`` runs the filter's own milter callbacks over a message file and prints
the Authentication-Results header it would add; ``TestPublicKeys`` makes it read the public
keys from a file instead of DNS, so nothing leaves the machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hayate.auth.dkim_keys import DkimKey, DkimKeyStore, dns_record
from hayate.auth.dkim_sign import DkimSigner
from hayate.config import DkimConfig

OPENDKIM = shutil.which("opendkim") or ("/usr/sbin/opendkim" if Path("/usr/sbin/opendkim").exists()
                                        else None)
pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(OPENDKIM is None, reason="opendkim is not installed (Debian opendkim)"),
]

MESSAGE = (
    b"Received: from client (client [192.0.2.7]) by mx.example.com\r\n"
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.net,\r\n\tcarol@example.net\r\n"
    b"Subject:  Quarterly   report\r\n"
    b"Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello  Bob,\t\r\n\r\nthe numbers are in. \r\n\r\n\r\n"
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, DkimKey], Path]:
    tmp = tmp_path_factory.mktemp("opendkim")
    store = DkimKeyStore(tmp / "keys")
    keys = {
        "rsa": store.generate("example.com", "rsa", "rsa1"),
        "ed25519": store.generate("example.com", "ed25519", "ed1"),
    }
    lines = (f"{name} {value}\n" for name, value in map(dns_record, keys.values()))
    (tmp / "public-keys").write_text("".join(lines))
    (tmp / "opendkim.conf").write_text(
        "Mode v\n"
        "Syslog no\n"
        "AuthservID test.hayate\n"
        "AlwaysAddARHeader yes\n"
        f"TestPublicKeys {tmp / 'public-keys'}\n"
    )
    return keys, tmp


Setup = tuple[dict[str, DkimKey], Path]


def opendkim_results(setup: Setup, message: bytes) -> list[tuple[str, str]]:
    """(result, selector) for each signature, from the Authentication-Results OpenDKIM adds."""
    _, tmp = setup
    path = tmp / f"msg-{time.monotonic_ns()}.eml"
    path.write_bytes(message)
    assert OPENDKIM is not None
    proc = subprocess.run(
        [OPENDKIM, "-x", str(tmp / "opendkim.conf"), "-t", str(path), "-vv"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = re.findall(r"dkim=(\w+)[^;]*?header\.s=([\w.-]+)", proc.stdout)
    assert results, proc.stdout + proc.stderr
    return results


def sign(keys: list[DkimKey], message: bytes = MESSAGE) -> bytes:
    cfg = DkimConfig()
    return DkimSigner(cfg.headers, cfg.oversign, 86400).sign(message, keys, time.time()) + message


@pytest.mark.parametrize("algo", ["rsa", "ed25519"])
def test_opendkim_verifies_our_signature(
    setup: tuple[dict[str, DkimKey], Path], algo: str
) -> None:
    keys, _ = setup
    assert opendkim_results(setup, sign([keys[algo]])) == [("pass", keys[algo].selector)]


def test_opendkim_verifies_dual_signature(setup: tuple[dict[str, DkimKey], Path]) -> None:
    keys, _ = setup
    results = opendkim_results(setup, sign([keys["rsa"], keys["ed25519"]]))
    assert sorted(results) == [("pass", "ed1"), ("pass", "rsa1")]


TAMPERING: dict[str, Callable[[bytes], bytes]] = {
    "body changed": lambda m: m.replace(b"numbers are in", b"numbers are out"),
    "subject changed": lambda m: m.replace(b"Quarterly   report", b"Quarterly report!"),
    "over-signed header added": lambda m: m.replace(b"\r\n\r\nHello",
                                                    b"\r\nSubject: urgent\r\n\r\nHello"),
}


@pytest.mark.parametrize("algo", ["rsa", "ed25519"])
@pytest.mark.parametrize("change", sorted(TAMPERING))
def test_opendkim_rejects_changed_message(
    setup: tuple[dict[str, DkimKey], Path], algo: str, change: str
) -> None:
    keys, _ = setup
    changed = TAMPERING[change](sign([keys[algo]]))
    assert opendkim_results(setup, changed) == [("fail", keys[algo].selector)]
