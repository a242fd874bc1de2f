"""Context rules (hayate.bounces.refine) and the DSN reading they rely on, on hand-written
replies and reports."""

from __future__ import annotations

import pytest

from hayate.bounces.classify import reason_for
from hayate.bounces.parse import parse_message
from hayate.bounces.refine import refine


def _refined(text: str, status: str = "", report: str = "", temporary: bool = False) -> str:
    return refine(reason_for(text, status), text, temporary, status, report)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("551 User not local; please try <new@example.org>", ""),
        ("551 5.1.6 not our customer", "5.1.6"),
        ("550 no such user", "5.1.6"),
    ],
)
def test_551_or_x16_with_words_of_an_unknown_user_is_a_moved_mailbox(
    text: str, status: str
) -> None:
    assert _refined(text, status) == "has-moved"


def test_a_report_saying_the_account_is_disabled_outranks_a_generic_user_unknown() -> None:
    report = "Your account holder's mailbox is disabled.\n<a@example.net>: 550 user unknown"
    assert _refined("550 user unknown", "5.0.0", report) == "suspended"
    # not when a code says the address itself is bad, and not without the report's words
    assert _refined("550 5.1.1 user unknown", "5.1.1", report) == "user-unknown"
    assert _refined("550 user unknown", "5.0.0", "Delivery failed.") == "user-unknown"


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("connect to mx.example.net[192.0.2.1]:25: Connection timed out", "4.4.1"),
        ("connect to mx.example.net[192.0.2.1]:25: Connection refused", ""),
        ("The recipient server did not accept our requests to connect.", ""),
        ("Deferred: No route to host", ""),
        ("could not connect to any MX host", "4.4.1"),
    ],
)
def test_a_final_report_for_an_unreachable_host_means_the_message_expired(
    text: str, status: str
) -> None:
    assert reason_for(text, status) == "network-error"
    assert _refined(text, status, temporary=True) == "expired"


def test_a_session_that_broke_off_stays_a_network_error() -> None:
    text = "lost connection with mx.example.net[192.0.2.1] while sending RCPT TO"
    assert _refined(text, "4.4.2") == "network-error"
    assert _refined("Connection reset by peer", "4.4.2") == "network-error"


def _dsn(block: str, text: str = "Delivery failed.") -> bytes:
    return (
        "From: MAILER-DAEMON@relay.example.org\r\nTo: app@example.com\r\n"
        "Subject: Delivery Status Notification (Failure)\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="D"\r\n'
        f"\r\n--D\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
        "\r\n--D\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; relay.example.org\r\n\r\n{block}\r\n--D--\r\n"
    ).encode()


def test_dsn_fields_in_any_order_stay_one_recipient() -> None:
    # Action before Final-Recipient, Original-Recipient after it (Amazon SES writes this)
    block = (
        "Action: failed\r\nFinal-Recipient: rfc822; gone@example.net\r\n"
        "Original-Recipient: rfc822; gone@example.net\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 Mailbox does not exist\r\nStatus: 5.1.1\r\n"
    )
    [record] = parse_message(_dsn(block))
    assert (record.recipient, record.kind, record.reason, record.status) == (
        "gone@example.net", "hard", "user-unknown", "5.1.1")


def test_recipients_without_blank_lines_between_them_are_still_split() -> None:
    block = (
        "Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Final-Recipient: rfc822; b@example.net\r\nAction: failed\r\nStatus: 5.2.2\r\n"
    )
    found = {r.recipient: r.reason for r in parse_message(_dsn(block))}
    assert found == {"a@example.net": "user-unknown", "b@example.net": "mailbox-full"}


def test_a_x00_status_gives_way_to_the_remotes_own_code() -> None:
    block = (
        "Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.0.0\r\n"
        "Diagnostic-Code: smtp; 550 5.7.1 Sender ID (PRA) check failed\r\n"
    )
    [record] = parse_message(_dsn(block))
    assert (record.status, record.reason) == ("5.7.1", "policy")


def test_the_remotes_code_beats_a_relays_summary_code() -> None:
    block = (
        "Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.0.0\r\n"
        "Diagnostic-Code: smtp; 5.1.0 - Unknown address error 550-'5.7.1 Access denied'\r\n"
    )
    [record] = parse_message(_dsn(block))
    assert record.status == "5.7.1"


def test_a_specific_status_field_is_kept() -> None:
    block = (
        "Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.0.0 No such user\r\n"
    )
    assert parse_message(_dsn(block))[0].status == "5.1.1"


def test_a_final_prose_report_about_one_unreachable_recipient_is_expired() -> None:
    report = b"""\
From: MAILER-DAEMON@relay.example.org
To: app@example.com
Subject: Returned mail: Cannot send message for 5 days

   ----- Transcript of session follows -----
421 mx.example.net (smtp)... Deferred: Connection timed out with mx.example.net

   ----- Unsent message follows -----
From: app@example.com
To: late@example.net
Subject: receipt

hello
"""
    [record] = parse_message(report)
    assert (record.recipient, record.kind, record.reason) == ("late@example.net", "soft",
                                                              "expired")
