"""A private Dovecot as the reference IMAP server, leaving the system's Dovecot untouched.

Everything lives under one temporary folder (mode 0755, so Dovecot's unprivileged
processes can reach it): ``dovecot.conf``, ``passwd`` (one user, plaintext password),
``run/`` (base_dir), ``state/``, ``dovecot.log`` and ``mail/USER/`` (a Maildir, INBOX at
its root, owned by the ``nobody`` user the mail processes run as). IMAP listens on
127.0.0.1:PORT without TLS and accepts LOGIN / AUTHENTICATE PLAIN in the clear (loopback
only). ``dovecot -F -c FILE`` runs in its own session; closing stops that whole session.

Used by ``bench.imap`` (mbsync pulling a big Maildir) and by the MIME tests, which compare
Hayate's ENVELOPE/BODYSTRUCTURE/sections with Dovecot's.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from bench.procs import ServerProcess, free_port

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
MAIL_USER = "nobody"  # the system user owning the Maildir and running the imap processes


def missing_dovecot() -> str | None:
    """Why a private Dovecot cannot run here, or None when it can."""
    if not Path(DOVECOT).is_file():
        return f"{DOVECOT} is not installed (Debian package dovecot-imapd)"
    for user in ("dovecot", "dovenull", MAIL_USER):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"there is no '{user}' user"
    if os.geteuid() != 0:
        return "starting a private Dovecot needs root"
    return None


def wait_greeting(
    port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> str | None:
    """Wait until an IMAP server on 127.0.0.1:``port`` greets with ``* OK``. Returns None
    when it did, else why not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return f"exited with status {proc.returncode} before listening"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
                s.settimeout(5.0)
                greeting = s.recv(512)
                if greeting.startswith(b"* OK"):
                    s.sendall(b"z LOGOUT\r\n")
                    return None
                last = f"unexpected greeting {greeting[:60]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    return f"no IMAP greeting on port {port} within {timeout:.0f}s ({last})"


class PrivateDovecot(ServerProcess):
    """A running private Dovecot with one user; IMAP on 127.0.0.1:``port``."""

    name = "Dovecot"

    def __init__(
        self,
        base: Path | None = None,
        user: str = "bench",
        password: str = "bench",
        start_timeout: float = 30.0,
    ) -> None:
        self.user = user
        self.password = password
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-bench-", dir=base))
        self.root.chmod(0o755)
        self.config = self.root / "dovecot.conf"
        self.log_path = self.root / "dovecot.log"
        self.maildir = self.root / "mail" / user
        owner = pwd.getpwnam(MAIL_USER)
        self.uid, self.gid = owner.pw_uid, owner.pw_gid
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            self._configure()
            self._start(start_timeout)
        except BaseException:
            self.close()
            raise

    def _configure(self) -> None:
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True)
        self._own(self.root / "mail")
        (self.root / "passwd").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{self.uid}:{self.gid}::{self.maildir}::\n"
        )
        self.config.write_text(
            f"base_dir = {self.root / 'run'}\n"
            f"state_dir = {self.root / 'state'}\n"
            f"log_path = {self.log_path}\n"
            f"info_log_path = {self.log_path}\n"
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            "ssl = no\n"
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login\n"
            "default_login_user = dovenull\n"
            "default_internal_user = dovecot\n"
            "first_valid_uid = 1\n"
            f"mail_location = maildir:{self.root / 'mail'}/%u\n"
            "passdb {\n  driver = passwd-file\n"
            f"  args = scheme=PLAIN username_format=%u {self.root / 'passwd'}\n}}\n"
            "userdb {\n  driver = passwd-file\n"
            f"  args = username_format=%u {self.root / 'passwd'}\n}}\n"
            "service imap-login {\n  chroot =\n"
            f"  inet_listener imap {{\n    address = 127.0.0.1\n    port = {self.port}\n  }}\n"
            "  inet_listener imaps {\n    port = 0\n  }\n}\n"
        )

    def _own(self, top: Path) -> None:
        os.chown(top, self.uid, self.gid)
        for folder, dirs, files in os.walk(top):
            for name in dirs + files:
                os.chown(os.path.join(folder, name), self.uid, self.gid)

    def _start(self, timeout: float) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        problem = wait_greeting(self.port, timeout, self.proc)
        if problem:
            raise RuntimeError(f"dovecot: {problem}; log: {self.log_tail()}")

    # -- mail -------------------------------------------------------------------------

    def load(self, messages: Iterable[bytes]) -> int:
        """Write messages straight into INBOX's Maildir (``cur/``, seen, size in the name
        so Dovecot needs no stat); returns how many. Call before any client syncs."""
        count = 0
        stamp = int(time.time())
        cur = self.maildir / "cur"
        for count, data in enumerate(messages, 1):
            name = f"{stamp}.M{count}P1.bench,S={len(data)},W={len(data)}:2,S"
            (cur / name).write_bytes(data)
        self._own(self.maildir)
        return count

    def index(self, timeout: float = 600.0) -> None:
        """Let Dovecot read the Maildir into its index now (so no client pays for it)."""
        subprocess.run(
            [DOVEADM, "-c", str(self.config), "force-resync", "-u", self.user, "INBOX"],
            check=True, capture_output=True, timeout=timeout,
        )
