"""Delay warnings: kind "soft", reason "delayed", never counted as a bounce (own reports)."""

from __future__ import annotations

from hayate.bounces.delay import says_warning
from hayate.bounces.message import load
from hayate.bounces.parse import parse_message
from hayate.bounces.records import BounceRecord


def _dsn(subject: str, blocks: str, text: str = "Your message is late.") -> bytes:
    return (
        "From: MAILER-DAEMON@relay.example.org\r\n"
        "To: app@example.com\r\n"
        f"Subject: {subject}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="D"\r\n'
        f"\r\n--D\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
        "\r\n--D\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.example.org\r\n\r\n"
        f"{blocks}"
        "\r\n--D\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Return-Path: <app@example.com>\r\nFrom: app@example.com\r\nSubject: receipt\r\n"
        "\r\n--D--\r\n"
    ).encode()


def _block(rcpt: str, action: str, status: str, diagnostic: str) -> str:
    return (
        f"Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
    )


def _by_rcpt(data: bytes) -> dict[str, BounceRecord]:
    return {r.recipient: r for r in parse_message(data)}


def test_action_delayed_is_a_warning_with_its_cause_kept() -> None:
    data = _dsn("Delivery Status Notification", _block(
        "slow@example.net", "delayed", "4.4.1", "connect to mx.example.net: Connection timed out"))
    [record] = parse_message(data)
    assert (record.recipient, record.kind, record.reason, record.status) == (
        "slow@example.net", "soft", "delayed", "4.4.1")
    assert "Connection timed out" in record.remote_reply


def test_a_report_with_failed_and_delayed_recipients_keeps_them_apart() -> None:
    blocks = _block("gone@example.net", "failed", "5.1.1", "550 5.1.1 No such user") + _block(
        "full@example.net", "delayed", "4.2.2", "452 4.2.2 Over quota")
    found = _by_rcpt(_dsn("Undelivered Mail Returned to Sender", blocks))
    assert (found["gone@example.net"].kind, found["gone@example.net"].reason) == (
        "hard", "user-unknown")
    assert (found["full@example.net"].kind, found["full@example.net"].reason) == (
        "soft", "delayed")


def test_action_failed_is_final_even_when_the_text_says_warning() -> None:
    data = _dsn(
        "Delayed Mail (still being retried)",
        _block("full@example.net", "failed", "4.2.2", "452 4.2.2 Over quota"),
        text="THIS IS A WARNING MESSAGE ONLY.",
    )
    [record] = parse_message(data)
    assert (record.kind, record.reason) == ("soft", "mailbox-full")


def test_dsn_without_action_follows_the_reports_own_words() -> None:
    block = "Final-Recipient: rfc822; late@example.net\r\nStatus: 4.3.0\r\n\r\n"
    data = _dsn("Delivery delayed: receipt", block)
    assert parse_message(data)[0].reason == "delayed"
    no_warning = _dsn("Returned mail", block, text="Delivery failed.")
    assert parse_message(no_warning)[0].kind == "soft"


PROSE_WARNING = b"""\
From: Mail Delivery Subsystem <mailer-daemon@mx.example.org>
To: app@example.com
Subject: Delivery Status Notification (Delay)

THIS IS A WARNING MESSAGE ONLY.
YOU DO NOT NEED TO RESEND YOUR MESSAGE.

Delivery to the following recipient has been delayed:

     late@example.net

The remote server said: 451 4.3.0 Temporary local problem, try again

----- Original message -----

From: app@example.com
To: late@example.net
Subject: receipt
"""


def test_prose_warning_without_dsn_fields() -> None:
    [record] = parse_message(PROSE_WARNING)
    assert (record.recipient, record.kind, record.reason, record.status) == (
        "late@example.net", "soft", "delayed", "4.3.0")
    assert record.remote_reply.startswith("451 4.3.0")


def test_a_permanent_failure_inside_a_warning_is_still_a_bounce() -> None:
    data = PROSE_WARNING.replace(
        b"451 4.3.0 Temporary local problem, try again", b"550 5.1.1 No such user"
    )
    [record] = parse_message(data)
    assert (record.kind, record.reason) == ("hard", "user-unknown")


def test_warning_signals() -> None:
    def subject(text: str, auto: str = "") -> bool:
        head = f"Subject: {text}\n" + (f"Auto-Submitted: {auto}\n" if auto else "")
        return says_warning(load(f"From: x@example.org\n{head}\nbody\n".encode()), "")

    assert subject("Warning: could not send message for past 4 hours")
    assert subject("Warning--Could not send mail for past 8.5 hours")
    assert subject("Warning: message 1rAbCd-0001Xy-7Q delayed 24 hours")
    assert subject("Delivery delayed:receipt")
    assert subject("Delivery status notification: delayed")
    assert subject("Delivery Notification: Delivery has been delayed")
    assert subject("Returned mail", auto="auto-generated (warning-timeout)")
    # a bounce's subject often ends with the original's, which may say anything
    assert not subject("Undeliverable: Delivery delayed for your order")
    assert not subject("Returned mail: see transcript for details")
    plain = load(b"From: x@example.org\nSubject: failure notice\n\nbody\n")
    assert says_warning(plain, "Please note that this is only a temporary failure report.")
    assert says_warning(plain, "A message that you sent has not yet been delivered to one")
    assert says_warning(plain, "Message will be retried for 2 more day(s)")
    assert not says_warning(plain, "I'm not going to try again; this message has been in the "
                                   "queue too long.")
