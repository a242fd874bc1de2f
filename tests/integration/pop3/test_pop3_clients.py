"""POP3 end to end: a real ``hayate serve`` with SMTP, POP3 and POP3S listeners, mail
delivered over SMTP, read by real clients — Python's poplib, curl, fetchmail and getmail6.

One server for the module; every test uses its own account. Clients check the certificate
(host ``localhost``, the server's self-signed certificate given as the CA).
"""

from __future__ import annotations

import os
import poplib
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.hayate_server import HayateServer

pytestmark = pytest.mark.timeout(120)

PASSWORD = "pop3-client-pw"
CURL = shutil.which("curl")
FETCHMAIL = shutil.which("fetchmail")
GETMAIL = shutil.which("getmail")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HayateServer]:
    with HayateServer(tmp_path_factory.mktemp("pop3serve"),
                      listeners=("smtp", "pop3", "pop3s"), tls=True) as server:
        yield server


def new_account(server: HayateServer, name: str) -> str:
    address = f"{name}@hayate.test"
    server.cli("user", "add", address, input=f"{PASSWORD}\n".encode())
    return address


def mail(subject: str, to: str, body: str = "Hello over POP3.\r\n") -> bytes:
    return (f"From: sender@example.test\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.test>\r\n\r\n{body}").encode()


def context(server: HayateServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.dir / "cert.pem"))


def pop3s(server: HayateServer, address: str) -> poplib.POP3_SSL:
    client = poplib.POP3_SSL("localhost", server.ports["pop3s"], timeout=10,
                             context=context(server))
    client.user(address)
    client.pass_(PASSWORD)
    return client


def login_when_free(server: HayateServer, address: str) -> poplib.POP3_SSL:
    """Log in, waiting (bounded) while a session that just ended still holds the lock."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return pop3s(server, address)
        except poplib.error_proto as exc:
            if b"[IN-USE]" not in exc.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def count(server: HayateServer, address: str) -> int:
    client = login_when_free(server, address)
    try:
        return int(client.stat()[0])
    finally:
        client.quit()


def deliver(server: HayateServer, address: str, messages: list[bytes],
            total: int | None = None) -> None:
    """Send over SMTP and wait until POP3 shows ``total`` messages (default: as many as
    were sent)."""
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as smtp:
        for data in messages:
            smtp.sendmail("sender@example.test", [address], data)
    deadline = time.monotonic() + 15
    while count(server, address) < (total or len(messages)):
        if time.monotonic() > deadline:
            raise AssertionError("mail was not delivered")
        time.sleep(0.1)


def test_poplib_stls_session(served: HayateServer) -> None:
    address = new_account(served, "stls")
    deliver(served, address, [mail("first", address), mail("second", address,
                                                          ".dotted\r\nline\r\n")])
    client = poplib.POP3("localhost", served.ports["pop3"], timeout=10)
    assert client.getwelcome() == b"+OK Hayate POP3 ready."
    assert "USER" not in client.capa()  # no passwords before TLS
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Plaintext"):
        client.user(address)
    client.stls(context(served))
    client.user(address)
    client.pass_(PASSWORD)
    _, listing, _ = client.list()
    sizes = [int(line.split()[1]) for line in listing]
    _, lines, _ = client.retr(2)
    text = b"\r\n".join(lines) + b"\r\n"
    assert len(text) == sizes[1]  # LIST gives the exact octets RETR sends (unstuffed)
    assert b"\r\n.dotted\r\nline\r\n" in text and b"Subject: second" in text
    assert b"Received: from" in text  # the message as delivered, trace header included
    client.quit()


def test_dele_and_quit_removes_dele_and_drop_does_not(served: HayateServer) -> None:
    address = new_account(served, "dele")
    deliver(served, address, [mail(f"m{i}", address) for i in range(3)])
    dropped = pop3s(served, address)
    dropped.dele(1)
    dropped.close()  # gone without QUIT
    assert count(served, address) == 3
    client = login_when_free(served, address)
    client.dele(1)
    client.dele(3)
    assert client.quit() == b"+OK Logging out, messages deleted."
    client = pop3s(served, address)
    _, lines, _ = client.retr(1)
    assert b"Subject: m1" in lines and client.stat()[0] == 1
    client.quit()


def test_second_session_is_refused_while_the_first_holds_the_maildrop(
        served: HayateServer) -> None:
    address = new_account(served, "lock")
    first = pop3s(served, address)
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[IN-USE\]"):
        pop3s(served, address)
    first.quit()
    pop3s(served, address).quit()


def test_uidl_stays_the_same_across_sessions(served: HayateServer) -> None:
    address = new_account(served, "uidl")
    deliver(served, address, [mail(f"u{i}", address) for i in range(3)])
    client = pop3s(served, address)
    before = [line.split()[1] for line in client.uidl()[1]]
    client.dele(2)
    client.quit()
    client = pop3s(served, address)
    after = [line.split()[1] for line in client.uidl()[1]]
    client.quit()
    assert after == [before[0], before[2]] and len(set(before)) == 3


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_lists_and_retrieves_over_pop3s_and_stls(served: HayateServer) -> None:
    assert CURL is not None
    address = new_account(served, "curl")
    deliver(served, address, [mail("for curl", address)])
    cert = str(served.dir / "cert.pem")
    user = ["-u", f"{address}:{PASSWORD}", "--cacert", cert, "-s", "-S", "--max-time", "20"]
    port, port_tls = served.ports["pop3"], served.ports["pop3s"]
    listing = subprocess.run([CURL, *user, f"pop3s://localhost:{port_tls}/"],
                             capture_output=True, timeout=30, check=True).stdout
    assert listing.startswith(b"1 ") and listing.count(b"\n") == 1
    body = subprocess.run([CURL, *user, f"pop3s://localhost:{port_tls}/1"],
                          capture_output=True, timeout=30, check=True).stdout
    assert b"Subject: for curl" in body and body.endswith(b"Hello over POP3.\r\n")
    stls = subprocess.run([CURL, *user, "--ssl-reqd", f"pop3://localhost:{port}/1"],
                          capture_output=True, timeout=30, check=True).stdout
    assert stls == body
    uidl = subprocess.run([CURL, *user, "-X", "UIDL", f"pop3s://localhost:{port_tls}/"],
                          capture_output=True, timeout=30, check=True).stdout
    assert uidl.startswith(b"1 ") and len(uidl.split()[1]) == 16
    refused = subprocess.run([CURL, "-u", f"{address}:wrong", "--cacert", cert, "-s",
                              f"pop3s://localhost:{port_tls}/1"], capture_output=True,
                             timeout=30)
    assert refused.returncode == 67  # CURLE_LOGIN_DENIED


@pytest.mark.skipif(FETCHMAIL is None, reason="fetchmail is not installed")
def test_fetchmail_retrieves_over_pop3s_and_deletes(served: HayateServer,
                                                    tmp_path: Path) -> None:
    assert FETCHMAIL is not None
    address = new_account(served, "fetchmail")
    deliver(served, address, [mail(f"fm{i}", address, f"body {i}\r\n.dot\r\n")
                              for i in range(3)])
    out = tmp_path / "out"
    out.mkdir()
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll localhost protocol pop3 port {served.ports['pop3s']} timeout 20\n"
        f'  user "{address}" password "{PASSWORD}" is root here\n'
        f"  ssl sslcertck sslcertfile {served.dir / 'cert.pem'}\n"
        f"  mda \"/bin/sh -c 'cat > $(mktemp {out}/msg.XXXXXX)'\"\n"
        "  fetchall nokeep\n"
    )
    rc.chmod(0o600)
    result = subprocess.run(
        [FETCHMAIL, "-f", str(rc), "-N", "--nosyslog", "-v"], capture_output=True,
        timeout=60, env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    got = sorted(p.read_bytes() for p in out.iterdir())
    assert len(got) == 3
    for i, data in enumerate(got):
        assert f"Subject: fm{i}".encode() in data and b"\n.dot\n" in data.replace(b"\r", b"")
    assert count(served, address) == 0  # fetchmail deleted what it retrieved


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory "nobody" can reach (pytest's tmp_path is inside a 0700 directory)."""
    with tempfile.TemporaryDirectory(prefix="hayate-getmail-") as name:
        folder = Path(name)
        folder.chmod(0o777)
        yield folder


@pytest.mark.skipif(GETMAIL is None, reason="getmail6 is not installed")
def test_getmail_retrieves_only_new_mail_by_uidl(served: HayateServer, tmp_path: Path,
                                                 shared_dir: Path) -> None:
    assert GETMAIL is not None
    address = new_account(served, "getmail")
    deliver(served, address, [mail("g1", address), mail("g2", address)])
    maildir = shared_dir / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for folder in (maildir, *(maildir / s for s in ("cur", "new", "tmp"))):
        folder.chmod(0o777)  # getmail delivers as "nobody" (it refuses to as root)
    rc = tmp_path / "getmailrc"
    rc.write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = localhost\n"
        f"port = {served.ports['pop3s']}\nusername = {address}\npassword = {PASSWORD}\n"
        f"ca_certs = {served.dir / 'cert.pem'}\n"
        f"[destination]\ntype = Maildir\npath = {maildir}/\nuser = nobody\n"
        "[options]\nread_all = false\ndelete = false\nverbose = 0\n"
    )
    state = tmp_path / "state"
    state.mkdir()

    def run() -> None:
        result = subprocess.run([GETMAIL, f"--rcfile={rc}", f"--getmaildir={state}"],
                                capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()

    run()
    first = {p.name for p in (maildir / "new").iterdir()}
    assert len(first) == 2
    deliver(served, address, [mail("g3", address)], total=3)
    run()  # only the message it has not seen: the UIDLs of the first two did not change
    new = [p for p in (maildir / "new").iterdir() if p.name not in first]
    assert len(new) == 1 and b"Subject: g3" in new[0].read_bytes()
    assert count(served, address) == 3  # delete = false kept them on the server
