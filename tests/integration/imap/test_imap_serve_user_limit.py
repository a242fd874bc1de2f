"""``[mailbox] max_connections_per_user`` holds for the node: a real ``hayate serve`` with two
workers and a limit of 2; logins spread over both workers (the kernel hands connections to
either), yet only two sessions of the account are let in at once, IMAP and POP3 together."""

from __future__ import annotations

import imaplib
import poplib
import ssl
from pathlib import Path

from tests.support.hayate_server import HayateServer

PASSWORD = "Limit-Test-Pass-1"
ADDRESS = "limited@hayate.test"


def test_sessions_per_user_are_counted_over_all_workers(tmp_path: Path) -> None:
    server = HayateServer(
        tmp_path, listeners=("smtp", "imaps", "pop3s"), tls=True, workers=2,
        sections={"mailbox": {"max_connections_per_user": 2, "plaintext_auth": False,
                              "auth_failure_delay": 0.0}},
    )
    with server:
        server.cli("user", "add", ADDRESS, input=(PASSWORD + "\n").encode())
        context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        clients = [imaplib.IMAP4_SSL("localhost", server.ports["imaps"], ssl_context=context,
                                     timeout=10) for _ in range(8)]
        let_in: list[imaplib.IMAP4_SSL] = []
        refused = 0
        for client in clients:
            try:
                client.login(ADDRESS, PASSWORD)
                let_in.append(client)
            except imaplib.IMAP4.error as exc:
                assert "LIMIT" in str(exc) or "Too many" in str(exc), exc
                refused += 1
        assert (len(let_in), refused) == (2, 6)
        # POP3 counts against the same limit, whichever worker takes it
        pop = poplib.POP3_SSL("localhost", server.ports["pop3s"], context=context, timeout=10)
        pop.user(ADDRESS)
        try:
            pop.pass_(PASSWORD)
            raise AssertionError("a third session was let in over POP3")
        except poplib.error_proto as exc:
            assert b"IN-USE" in exc.args[0] or b"too many" in exc.args[0].lower(), exc
        pop.quit()
        # a session that ends gives its slot back to the node
        let_in[0].logout()
        retry = imaplib.IMAP4_SSL("localhost", server.ports["imaps"], ssl_context=context,
                                  timeout=10)
        assert retry.login(ADDRESS, PASSWORD)[0] == "OK"
        for client in [*let_in[1:], retry]:
            client.logout()
        for client in clients:
            if client not in let_in:
                client.shutdown()
    assert "Traceback" not in server.log()
