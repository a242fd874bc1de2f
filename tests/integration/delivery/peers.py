"""Peers for the remote delivery tests: real servers on 127.0.0.1, and our DNS seam.

- ``DictResolver``: our own MxResolver seam backed by dicts (MX answers, addresses, errors);
- ``CountingProxy``: a TCP relay of our own in front of a real server, which counts
  connections open at once and can cut a connection when it sees a chosen MAIL command;
- ``postfix``: a private Postfix instance (own config, queue and log in a temp directory)
  whose smtpd offers STARTTLS (TLS 1.3 only), SIZE, SMTPUTF8 and PIPELINING, and refuses
  chosen recipients: bad@example.net (554 5.7.1), soft@example.net (450 4.2.1). Accepted
  mail is discarded. Needs root and Postfix; tests skip with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hayate.core.seams import DnsError, MxAnswer, MxHost


# -- DNS seam ------------------------------------------------------------------------------
@dataclass
class DictResolver:
    """MX answers and addresses from dicts; a DnsError value is raised instead."""

    mx: dict[str, MxAnswer | DnsError] = field(default_factory=dict)
    addresses: dict[str, list[str] | DnsError] = field(default_factory=dict)
    mx_lookups: list[str] = field(default_factory=list)
    address_lookups: list[str] = field(default_factory=list)

    def add_mx(self, domain: str, *hosts: str) -> None:
        """MX records for ``domain`` in the order given (preferences 10, 20, ...)."""
        mx = tuple(MxHost(10 * (i + 1), h) for i, h in enumerate(hosts))
        self.mx[domain] = MxAnswer(domain, mx)

    async def resolve_mx(self, domain: str) -> MxAnswer:
        self.mx_lookups.append(domain)
        answer = self.mx.get(domain)
        if answer is None:
            raise DnsError(f"{domain}: NXDOMAIN", temporary=False)
        if isinstance(answer, DnsError):
            raise answer
        return answer

    async def resolve_addresses(self, host: str) -> list[str]:
        self.address_lookups.append(host)
        found = self.addresses.get(host)
        if found is None:
            raise DnsError(f"{host}: NXDOMAIN", temporary=False)
        if isinstance(found, DnsError):
            raise found
        return list(found)


# -- TCP proxy -----------------------------------------------------------------------------
class CountingProxy:
    """Relays 127.0.0.1:port to an upstream server and counts connections.

    ``cut_at`` maps a connection number (0 = first) to the count of "MAIL FROM" commands
    after which that connection is closed on both sides instead of forwarding the command.
    """

    def __init__(self, upstream: tuple[str, int], cut_at: dict[int, int] | None = None) -> None:
        self.upstream = upstream
        self.cut_at = cut_at or {}
        self.active = 0
        self.peak = 0
        self.total = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CountingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        number = self.total
        self.total += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        cut = self.cut_at.get(number)
        s_writer: asyncio.StreamWriter | None = None
        pumps: list[asyncio.Task[None]] = []

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, watch: bool) -> None:
            seen = 0
            while data := await src.read(65536):
                if watch and cut is not None:
                    seen += data.count(b"MAIL FROM")
                    if seen >= cut:
                        return
                dst.write(data)
                await dst.drain()

        try:
            s_reader, s_writer = await asyncio.open_connection(*self.upstream)
            pumps.append(asyncio.create_task(pump(c_reader, s_writer, True)))
            pumps.append(asyncio.create_task(pump(s_reader, c_writer, False)))
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self.active -= 1
            self._tasks.discard(task)
            for writer in (c_writer, s_writer):
                if writer is not None:
                    writer.close()
            for p in pumps:
                p.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pumps, return_exceptions=True)


# -- a private Postfix ---------------------------------------------------------------------
POSTFIX = "/usr/sbin/postfix"


@dataclass
class PostfixPeer:
    port: int
    home: Path

    @property
    def maillog(self) -> str:
        path = self.home / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_log(self, needle: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.maillog:
                return True
            time.sleep(0.05)
        return False


def _self_signed(cert: Path, key: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pkey = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.postfix.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pkey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(pkey, hashes.SHA256())
    )
    key.write_bytes(
        pkey.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {home}/queue
data_directory = {home}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.postfix.test
mydestination =
mynetworks = 127.0.0.0/8
maillog_file = {home}/maillog
maillog_file_prefixes = {home}
message_size_limit = 100000
smtpd_recipient_restrictions =
    check_recipient_access inline:{{ {{bad@example.net=REJECT no such user}},
        {{soft@example.net=450 4.2.1 mailbox busy}} }},
    permit_mynetworks, reject
default_transport = discard
relay_transport = discard
smtpd_tls_security_level = may
smtpd_tls_cert_file = {home}/conf/cert.pem
smtpd_tls_key_file = {home}/conf/key.pem
smtpd_tls_protocols = >=TLSv1.3
smtpd_tls_loglevel = 1
"""


def _postfix_skip_reason() -> str | None:
    if not os.access(POSTFIX, os.X_OK):
        return f"{POSTFIX} is not installed"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "the postfix user or postdrop group is missing"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_postfix() -> Iterator[PostfixPeer]:
    """Run a private Postfix for the duration of the generator (skips when impossible)."""
    reason = _postfix_skip_reason()
    if reason:
        pytest.skip(reason)
    home = Path(tempfile.mkdtemp(prefix="hayate-postfix-"))
    home.chmod(0o755)
    conf = home / "conf"
    conf.mkdir()
    (home / "queue").mkdir()
    (home / "data").mkdir()
    shutil.chown(home / "data", user="postfix")
    _self_signed(conf / "cert.pem", conf / "key.pem")
    port = _free_port()
    (conf / "master.cf").write_text(_MASTER_CF.format(port=port))
    (conf / "main.cf").write_text(_MAIN_CF.format(home=home))
    cmd = [POSTFIX, "-c", str(conf)]
    started = subprocess.run([*cmd, "start"], capture_output=True, text=True, timeout=30)
    try:
        if started.returncode != 0:
            pytest.fail(f"private postfix did not start: {started.stdout}{started.stderr}")
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("private postfix does not accept connections")
                time.sleep(0.05)
        yield PostfixPeer(port, home)
    finally:
        pidfile = home / "queue" / "pid" / "master.pid"
        pid = int(pidfile.read_text().strip() or 0) if pidfile.exists() else 0
        subprocess.run([*cmd, "stop"], capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(home, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
