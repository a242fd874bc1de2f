"""Signatures made by OpenDKIM 2.11 (a real peer) checked by our verifier, by dkimpy, and by
OpenDKIM itself, before and after the message is changed on its way.

``opendkim -t FILE`` in signing mode runs the filter's milter callbacks over a message file
and prints the DKIM-Signature field it would add; with ``Mode v`` and ``TestPublicKeys`` it
prints the Authentication-Results it would add instead. Messages come from the differential
corpus (folded, duplicated and many headers, odd whitespace, empty bodies, 8-bit text), signed
with all four canonicalizations, rsa-sha256 and ed25519-sha256, with and without l= and an
over-signed From. Keys are served to ``verify_dkim`` by a real DNS server on 127.0.0.1.

What OpenDKIM 2.11 does differently, and how the tests deal with it:

- a second From added *above* the signed one passes OpenDKIM (bottom-up selection, RFC 6376
  5.4.2) but fails dkimpy and us (see hayate.auth.dkim_check);
- it sees header fields through the milter interface, as a name and a value without its
  leading whitespace, and writes them back as "Name: value": under simple header
  canonicalization it ignores a change of the whitespace after a colon (we do not), and it
  signs "Name:value" fields wrongly, so the messages it signs with simple headers are
  written "Name: value" first (:func:`one_space_after_colons`);
- its ed25519 signatures with simple header canonicalization verify nowhere (not in OpenDKIM
  itself, not in dkimpy, not here), so ed25519 is only used with relaxed headers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.dnsserver import TestDnsServer
from tests.unit.auth.dkim_corpus import (
    CANONICALIZATIONS,
    DOMAIN,
    MUTATIONS,
    TestKey,
    corpus,
    delivered,
    dkimpy_passes,
    dkimpy_records,
    key_zone,
    make_keys,
    ours,
)

from hayate.dns import CachingResolver

OPENDKIM = shutil.which("opendkim") or ("/usr/sbin/opendkim" if Path("/usr/sbin/opendkim").exists()
                                        else None)
pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(OPENDKIM is None, reason="opendkim is not installed (Debian opendkim)"),
]

KEYS = make_keys()
RECORDS = dkimpy_records(KEYS)
MESSAGES = corpus(8463, 16)
OPENDKIM_DIFFERS = {"From added on top", "space after colon"}  # ours fail, OpenDKIM passes


@dataclass(frozen=True)
class OpenDkim:
    root: Path

    def run(self, config: str, message: bytes, *extra: str) -> str:
        path = self.root / f"msg-{time.monotonic_ns()}.eml"
        path.write_bytes(message)
        conf = self.root / f"conf-{time.monotonic_ns()}.conf"
        conf.write_text(config)
        assert OPENDKIM is not None
        proc = subprocess.run([OPENDKIM, "-x", str(conf), "-t", str(path), *extra],
                              capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def sign(self, message: bytes, key: TestKey, canon: tuple[str, str], *,
             length: bool = False, oversign: bool = False) -> bytes:
        """``message`` with the DKIM-Signature field OpenDKIM adds on top."""
        key_file = self.root / f"{key.selector}.pem"
        config = (
            "Mode s\nSyslog no\n"
            f"Domain {DOMAIN}\nSelector {key.selector}\nKeyFile {key_file}\n"
            "RequireSafeKeys false\n"
            f"SignatureAlgorithm {key.signature_algorithm.decode()}\n"
            f"Canonicalization {canon[0]}/{canon[1]}\n"
        )
        if length:
            config += f"BodyLengthDB refile:{self.root / 'everyone.re'}\n"
        if oversign:
            config += "OversignHeaders From\n"
        out = self.run(config, message)
        field = out.split("\n", 1)[1]  # after the "opendkim: FILE:" line
        assert field.startswith("DKIM-Signature: "), out
        raw = field.encode().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return raw + message

    def passes(self, message: bytes) -> list[bool]:
        """OpenDKIM's verdict for each signature, in the order it reports them."""
        config = ("Mode v\nSyslog no\nAuthservID test.hayate\nAlwaysAddARHeader yes\n"
                  f"TestPublicKeys {self.root / 'public-keys'}\n")
        out = self.run(config, message, "-vv")
        return [r == "pass" for r in re.findall(r"dkim=(\w+)", out)]


@pytest.fixture(scope="module")
def opendkim(tmp_path_factory: pytest.TempPathFactory) -> OpenDkim:
    root = tmp_path_factory.mktemp("opendkim-diff")
    for key in KEYS.values():
        path = root / f"{key.selector}.pem"
        path.write_bytes(key.pem)
        path.chmod(0o600)
    (root / "everyone.re").write_text("*\n")
    (root / "public-keys").write_text("".join(f"{k.record[0]} {k.record[1]}\n"
                                              for k in KEYS.values()))
    return OpenDkim(root)


def one_space_after_colons(message: bytes) -> bytes:
    """The header fields written "Name: value" (see the module docstring)."""
    head, _, body = message.partition(b"\r\n\r\n")
    head = re.sub(rb"(^|\r\n)([!-9;-~]+):[ \t]*", rb"\1\2: ", head)
    return head + b"\r\n\r\n" + body


@pytest.fixture(scope="module")
def signed(opendkim: OpenDkim) -> list[tuple[str, bytes]]:
    out = []
    for i, message in enumerate(MESSAGES):
        canon = CANONICALIZATIONS[i % 4]
        key = KEYS["rsa" if canon[0] == "simple" or i % 3 == 0 else "ed25519"]
        if canon[0] == "simple":
            message = one_space_after_colons(message)
        length, oversign = i % 3 == 0, i % 5 == 0
        label = (f"{i}-{key.algorithm}-{canon[0]}/{canon[1]}"
                 f"{'-l' if length else ''}{'-oversigned' if oversign else ''}")
        out.append((label, opendkim.sign(message, key, canon, length=length, oversign=oversign)))
    return out


@pytest.fixture(scope="module")
def dns_server() -> Iterator[TestDnsServer]:
    with TestDnsServer({DOMAIN: key_zone(KEYS)}) as server:
        yield server


@pytest.fixture(scope="module")
def resolver(dns_server: TestDnsServer) -> CachingResolver:
    return CachingResolver([dns_server.address], timeout=2.0)


@pytest.mark.parametrize("index", range(len(MESSAGES)))
async def test_opendkim_signatures_agree_with_dkimpy(
    signed: list[tuple[str, bytes]], resolver: CachingResolver, index: int
) -> None:
    label, message = signed[index]
    assert await ours(message, resolver) == dkimpy_passes(message, RECORDS) == [True], label
    disagreements = []
    for name, mutate in MUTATIONS.items():
        changed = delivered(mutate(message))
        mine, theirs = await ours(changed, resolver), dkimpy_passes(changed, RECORDS)
        if mine != theirs:
            disagreements.append(f"{label} {name}: ours {mine}, dkimpy {theirs}")
    assert not disagreements, disagreements


# every c=, rsa and ed25519, l=, over-signing
@pytest.mark.parametrize("index", [0, 1, 2, 3, 7, 10])
async def test_opendkim_verifier_agrees_too(
    opendkim: OpenDkim, signed: list[tuple[str, bytes]], resolver: CachingResolver, index: int
) -> None:
    label, message = signed[index]
    disagreements = []
    for name, mutate in MUTATIONS.items():
        changed = delivered(mutate(message))
        mine, theirs = await ours(changed, resolver), opendkim.passes(changed)
        expected_difference = name in OPENDKIM_DIFFERS and (mine, theirs) == ([False], [True])
        if mine != theirs and not expected_difference:
            disagreements.append(f"{label} {name}: ours {mine}, opendkim {theirs}")
    assert not disagreements, disagreements
