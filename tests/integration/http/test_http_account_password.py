"""A user changes its own password through ``hayate serve``'s HTTP listener with curl; the
new password works at once for SMTP AUTH, IMAP and POP3, the old one no longer does."""

from __future__ import annotations

import imaplib
import json
import poplib
import smtplib
import ssl
import time
from pathlib import Path

import pytest
from tests.integration.http.conftest import curl, wait_until_healthy
from tests.support.hayate_server import HayateServer

ALICE = "alice@hayate.test"


def no_verify() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def smtp_login(port: int, password: str) -> bool:
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=no_verify()) as client:
        try:
            client.login(ALICE, password)
        except smtplib.SMTPAuthenticationError:
            return False
        return True


def change_password(server: HayateServer, folder: Path, current: str, new: str,
                    ) -> tuple[int, dict[str, str]]:
    got = curl(f"http://127.0.0.1:{server.ports['http']}/account/password",
               "-u", f"{ALICE}:{current}", "--data-urlencode", f"new_password={new}",
               folder=folder)
    return got.status, json.loads(got.body)


def test_own_password_change_then_smtp_auth_uses_the_new_one(tmp_path: Path) -> None:
    with HayateServer(tmp_path, listeners=("http", "submissions"), tls=True) as server:
        server.cli("user", "add", ALICE, input=b"old-password\n")
        wait_until_healthy(server.ports["http"], tmp_path)
        port = server.ports["submissions"]
        assert smtp_login(port, "old-password")

        started = time.monotonic()
        status, body = change_password(server, tmp_path, "wrong-guess", "whatever")
        assert (status, body) == (401, {"error": "wrong address or password"})
        assert time.monotonic() - started >= 1.9  # the failure delay

        status, body = change_password(server, tmp_path, "old-password", "brand new secret")
        assert (status, body) == (200, {"status": "password changed", "address": ALICE})
        assert smtp_login(port, "brand new secret")
        assert not smtp_login(port, "old-password")

        got = curl(f"http://127.0.0.1:{server.ports['http']}/account/password",
                   "-u", f"{ALICE}:brand new secret", "-H", "X-Forwarded-Proto: http",
                   "--data-urlencode", "new_password=over plain http", folder=tmp_path)
        assert got.status == 403
        assert smtp_login(port, "brand new secret")


@pytest.mark.timeout(60)
def test_imap_and_pop3_take_the_new_password(tmp_path: Path) -> None:
    with HayateServer(tmp_path, listeners=("http", "imaps", "pop3s"), tls=True) as server:
        server.cli("user", "add", ALICE, input=b"old-password\n")
        wait_until_healthy(server.ports["http"], tmp_path)
        status, _ = change_password(server, tmp_path, "old-password", "imap pop3 secret")
        assert status == 200

        imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=no_verify(),
                                 timeout=10)
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(ALICE, "old-password")
        assert imap.login(ALICE, "imap pop3 secret")[0] == "OK"
        imap.logout()

        pop = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=no_verify(),
                              timeout=10)
        pop.user(ALICE)
        assert pop.pass_("imap pop3 secret").startswith(b"+OK")
        pop.quit()
