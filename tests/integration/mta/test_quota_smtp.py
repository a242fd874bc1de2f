"""Quotas at SMTP time through a real ``hayate serve``: a full mailbox is refused at RCPT TO
with 452 4.2.2 (the sender retries later), other recipients are unaffected, and a quota
change made with ``hayate user quota`` applies to the very next transaction."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
from tests.integration.mta.conftest import mailbox, send, wait_for
from tests.support.hayate_server import HayateServer

ALICE = "alice@hayate.test"
BOB = "bob@hayate.test"


def message(subject: str, size: int = 2000) -> bytes:
    head = f"From: x@example.net\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\n".encode()
    return head + b"z" * (size - len(head) - 2) + b"\r\n"


def rcpt_replies(port: int, recipients: list[str], size: int | None = None
                 ) -> list[tuple[int, str]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example.net")
        options = [f"SIZE={size}"] if size is not None else []
        code, _ = client.mail("x@example.net", options)
        assert code == 250
        replies = []
        for rcpt in recipients:
            code, text = client.rcpt(rcpt)
            replies.append((code, text.decode()))
        client.rset()
        return replies


def test_a_full_mailbox_is_refused_at_rcpt_with_452(tmp_path: Path) -> None:
    with HayateServer(tmp_path, listeners=("smtp",)) as server:
        server.cli("user", "add", ALICE, input=b"pw-alice-1\n")
        server.cli("user", "add", BOB, input=b"pw-bob-1\n")
        port = server.ports["smtp"]
        send(port, "x@example.net", [ALICE], message("first"))
        wait_for(lambda: mailbox(server.dir / "data", ALICE), what="first delivery")

        out = server.cli("user", "quota", ALICE, "1K")
        assert "quota of alice@hayate.test: 1K" in out.stdout.decode()
        assert "the mailbox is full" in out.stderr.decode()

        (alice, bob) = rcpt_replies(port, [ALICE, BOB])
        assert alice[0] == 452 and alice[1].startswith("4.2.2 ")
        assert "Mailbox full" in alice[1]
        assert bob[0] == 250
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(port, "x@example.net", [ALICE], message("second"))
        assert refused.value.recipients[ALICE][0] == 452

        show = server.cli("user", "show", ALICE).stdout.decode()
        assert "of 1K (" in show and "INBOX" in show

        server.cli("user", "quota", ALICE, "10M")
        assert rcpt_replies(port, [ALICE])[0][0] == 250
        send(port, "x@example.net", [ALICE], message("third"))
        wait_for(lambda: len(mailbox(server.dir / "data", ALICE)) == 2, what="third delivery")
        assert [m["Subject"] for m in mailbox(server.dir / "data", ALICE)] == ["first", "third"]


def test_a_declared_size_that_does_not_fit_is_refused_with_552(tmp_path: Path) -> None:
    with HayateServer(tmp_path, listeners=("smtp",)) as server:
        server.cli("user", "add", ALICE, "--quota", "4K", input=b"pw-alice-1\n")
        port = server.ports["smtp"]
        assert rcpt_replies(port, [ALICE], size=3000)[0][0] == 250
        code, text = rcpt_replies(port, [ALICE], size=5000)[0]
        assert code == 552 and text.startswith("5.2.2 ")
