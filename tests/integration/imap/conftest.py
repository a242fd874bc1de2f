"""A real ``hayate serve`` with SMTP, IMAP (STARTTLS) and IMAPS listeners for the IMAP
end-to-end tests, one per test module; each test makes its own account with ``account``.
It runs two workers, so two sessions of one account may live in different processes.

The certificate is self-signed for ``localhost`` (mbsync and curl check the name), in
``served.dir / "cert.pem"``; passwords are accepted only over TLS (plaintext_auth false).
"""

from __future__ import annotations

import itertools
import smtplib
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.hayate_server import HayateServer

PASSWORD = "Imap-Test-Pass-1"
_numbers = itertools.count(1)


@dataclass
class Served:
    server: HayateServer
    dir: Path

    @property
    def imap(self) -> int:
        return self.server.ports["imap"]

    @property
    def imaps(self) -> int:
        return self.server.ports["imaps"]

    @property
    def smtp(self) -> int:
        return self.server.ports["smtp"]

    @property
    def cafile(self) -> str:
        return str(self.dir / "cert.pem")

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def add_account(self, address: str, quota: str | None = None) -> str:
        args = ["user", "add", address]
        if quota:
            args += ["--quota", quota]
        self.server.cli(*args, input=(PASSWORD + "\n").encode())
        return address

    def send(self, recipient: str, subject: str, body: str = "Hello over SMTP.") -> None:
        data = (f"From: sender@example.com\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
                f"Message-ID: <{subject.replace(' ', '.')}@example.com>\r\n\r\n{body}\r\n")
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=10) as client:
            client.sendmail("sender@example.com", [recipient], data.encode())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("hayate-imap")
    server = HayateServer(
        directory, listeners=("smtp", "imap", "imaps"), tls=True, workers=2,
        sections={"mailbox": {"watch_interval": 0.1, "plaintext_auth": False}},
    )
    with server:
        yield Served(server, directory)
    log = server.log()
    assert "Traceback" not in log and "internal error" not in log, log[-4000:]


@pytest.fixture
def account(served: Served) -> Callable[[], str]:
    """Makes a fresh account ``userN@hayate.test`` (password ``PASSWORD``) per call."""

    def make() -> str:
        return served.add_account(f"user{next(_numbers)}-{int(time.time())}@hayate.test")

    return make
