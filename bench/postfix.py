"""A private Postfix instance as the reference relay, leaving the system's Postfix untouched.

Layout under one temporary folder (mode 0755 so the ``postfix`` user can reach it):
``etc/`` (copies of /etc/postfix/main.cf and master.cf, then edited with ``postconf -c``),
``spool/`` (queue_directory), ``data/`` (data_directory, owned by postfix), ``maillog``.
The smtpd listens on 127.0.0.1:PORT (the port-25 ``smtp inet`` line is removed), relays
everything from 127.0.0.0/8 to ``relayhost = [127.0.0.1]:SINKPORT`` without TLS, with the
default concurrency limits and fsync on, like the setup PEERS.md measured. Services do not
chroot (a private queue directory has no copied /etc files). ``postfix -c DIR start`` starts it,
``postfix -c DIR stop`` stops it, and whatever survives is killed by session id.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.procs import Usage, free_port, kill_session, pid_alive, session_usage, wait_banner

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTQUEUE = "/usr/sbin/postqueue"
SYSTEM_CONFIG = Path("/etc/postfix")


def missing_postfix() -> str | None:
    """Why a private Postfix cannot run here, or None when it can."""
    for tool in (POSTFIX, POSTCONF, POSTQUEUE):
        if not Path(tool).is_file():
            return f"{tool} is not installed (Debian package postfix)"
    for name in ("main.cf", "master.cf"):
        if not (SYSTEM_CONFIG / name).is_file():
            return f"{SYSTEM_CONFIG / name} is missing"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "there is no 'postfix' user"
    if os.geteuid() != 0:
        return "starting a private Postfix needs root"
    return None


class PostfixRelay:
    """A running private Postfix: smtpd on 127.0.0.1:``port``, relaying to ``sink_port``."""

    name = "Postfix"

    def __init__(
        self, sink_port: int, base: Path | None = None, settings: Sequence[str] = ()
    ) -> None:
        """``settings``: more ``main.cf`` lines (``name = value``), e.g. ``smtpd_milters``."""
        self.sink_port = sink_port
        self.settings = tuple(settings)
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="postfix-bench-", dir=base))
        self.root.chmod(0o755)
        self.config_dir = self.root / "etc"
        self.queue_dir = self.root / "spool"
        self.data_dir = self.root / "data"
        self.maillog = self.root / "maillog"
        self.sid: int | None = None
        try:
            self._configure()
            self._start()
        except BaseException:
            self.close()
            raise

    # -- setup ----------------------------------------------------------------------------

    def _postconf(self, *args: str) -> None:
        subprocess.run(
            [POSTCONF, "-c", str(self.config_dir), *args],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def _configure(self) -> None:
        for d in (self.config_dir, self.queue_dir, self.data_dir):
            d.mkdir(mode=0o755)
        shutil.chown(self.data_dir, "postfix")
        for name in ("main.cf", "master.cf"):
            shutil.copy(SYSTEM_CONFIG / name, self.config_dir / name)
        self._postconf(
            "-e",
            f"queue_directory = {self.queue_dir}",
            f"data_directory = {self.data_dir}",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            # Not the machine's name: smtp-sink greets with that, and Postfix would see a loop.
            "myhostname = relay.postfix.bench",
            "mydestination =",
            "relay_domains =",
            "alias_maps =",
            "alias_database =",
            "mynetworks = 127.0.0.0/8",
            f"relayhost = [127.0.0.1]:{self.sink_port}",
            "smtp_tls_security_level = none",
            "smtpd_tls_security_level = none",
            "syslog_name = postfix-bench",
            f"maillog_file = {self.maillog}",
            f"maillog_file_prefixes = {self.root}",
            *self.settings,
        )
        self._postconf("-MX", "smtp/inet")
        listener = f"127.0.0.1:{self.port}"
        self._postconf("-Me", f"{listener}/inet = {listener} inet n - n - - smtpd")
        self._postconf("-F", "*/*/chroot = n")
        master = (self.config_dir / "master.cf").read_text()
        if "postlogd" not in master:
            self._postconf("-Me", "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd")

    def _start(self) -> None:
        done = subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), "start"],
            capture_output=True,
            timeout=60,
        )
        self.sid = self._master_pid()
        if done.returncode != 0:
            raise RuntimeError(f"postfix start failed: {self.log_tail()}")
        problem = wait_banner(self.port, 30)
        if problem:
            raise RuntimeError(f"postfix smtpd: {problem}; {self.log_tail()}")

    def _master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def log_tail(self, lines: int = 4) -> str:
        try:
            text = self.maillog.read_text(errors="replace").splitlines()
        except OSError:
            return "(no maillog)"
        return " | ".join(text[-lines:]) or "(empty maillog)"

    # -- measuring ------------------------------------------------------------------------

    def usage(self) -> Usage:
        """CPU and memory of master and all its services (master's session)."""
        if self.sid is None:
            return Usage(0.0, 0, 0, 0, 0)
        return session_usage(self.sid)

    def alive(self) -> str | None:
        """None while master runs, else why not."""
        if self.sid is None or not pid_alive(self.sid):
            return f"postfix master is gone: {self.log_tail()}"
        return None

    def leftover(self) -> str | None:
        """A note when mail is still queued (it would arrive during a later case)."""
        done = subprocess.run(
            [POSTQUEUE, "-c", str(self.config_dir), "-p"],
            capture_output=True,
            timeout=30,
            text=True,
        )
        out = done.stdout.strip()
        if "Mail queue is empty" in out:
            return None
        return out.splitlines()[-1] if out else f"postqueue failed: {done.stderr.strip()}"

    # -- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        try:
            if self.config_dir.joinpath("main.cf").exists():
                subprocess.run(
                    [POSTFIX, "-c", str(self.config_dir), "stop"],
                    capture_output=True,
                    timeout=30,
                )
            sid = self.sid if self.sid is not None else self._master_pid()
            if sid is not None:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and session_usage(sid).processes:
                    time.sleep(0.05)
                kill_session(sid)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostfixRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
