"""OpenDKIM (Debian ``opendkim``) as a signing milter for the private Postfix of the benchmarks.

The reference for what DKIM signing costs in the usual open-source stack: Postfix hands each
message to OpenDKIM over the milter protocol, OpenDKIM signs it (rsa-sha256, relaxed/relaxed,
OpenSSL underneath) and Postfix adds the header. :class:`OpenDkimMilter` writes a private key
and a config under a temporary folder, runs ``opendkim -f`` in its own session on
127.0.0.1:PORT and stops it on close. Mail from 127.0.0.0/8 (``InternalHosts``) whose From
domain is ``domain`` is signed.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.procs import ServerProcess

OPENDKIM = "/usr/sbin/opendkim"
SELECTOR = "bench"


def missing_opendkim() -> str | None:
    if not Path(OPENDKIM).is_file():
        return f"{OPENDKIM} is not installed (Debian package opendkim)"
    return None


def wait_listening(path: Path, timeout: float, proc: subprocess.Popen[bytes]) -> str | None:
    """Wait until something accepts connections on the Unix socket ``path`` (a milter does
    not greet, so a connection is all there is to see)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before listening"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(str(path))
                return None
        except OSError:
            time.sleep(0.05)
    return f"nothing listens on {path} after {timeout:.0f} s"


class OpenDkimMilter(ServerProcess):
    """A running ``opendkim`` that signs mail from ``domain`` with a fresh rsa-2048 key."""

    stop_grace = 5.0

    def __init__(self, domain: str, base: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="opendkim-bench-", dir=base))
        self.root.chmod(0o755)
        self.socket_path = self.root / "milter.sock"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file = self.root / "key.pem"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)  # OpenDKIM refuses a key others can read
        config = self.root / "opendkim.conf"
        config.write_text(
            "Syslog no\n"
            "Background no\n"
            "Mode s\n"
            f"Domain {domain}\n"
            f"Selector {SELECTOR}\n"
            f"KeyFile {key_file}\n"
            "RequireSafeKeys false\n"  # the key lies under /tmp, which everyone may write
            "Canonicalization relaxed/relaxed\n"
            "SignatureAlgorithm rsa-sha256\n"
            "OversignHeaders From\n"
            "InternalHosts 127.0.0.0/8\n"
            f"Socket local:{self.socket_path}\n"
            "UMask 000\n"  # Postfix's smtpd (user postfix) must reach the socket
            f"PidFile {self.root / 'opendkim.pid'}\n",
            encoding="ascii",
        )
        self.log_path = self.root / "opendkim.log"
        with self.log_path.open("wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [OPENDKIM, "-f", "-x", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        problem = wait_listening(self.socket_path, 20, self.proc)
        if problem:
            self.close()
            raise RuntimeError(f"opendkim: {problem}")

    @property
    def milter(self) -> str:
        """The ``smtpd_milters`` value that reaches this filter."""
        return f"unix:{self.socket_path}"
