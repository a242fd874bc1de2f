"""Reason categories from reply text and status, and the hard/soft mapping."""

from __future__ import annotations

import pytest

from hayate.bounces.classify import (
    HARD_REASONS,
    REASONS,
    kind_for,
    reason_for,
    reason_from_status,
)
from hayate.bounces.refine import refine


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("550 5.1.1 <a@example.net>: Recipient address rejected: User unknown", "user-unknown"),
        ("550 No such user here", "user-unknown"),
        ("550 5.1.1 The email account that you tried to reach does not exist.", "user-unknown"),
        ("552 5.2.2 Mailbox full", "mailbox-full"),
        ("452 4.2.2 The recipient's inbox is out of storage space", "mailbox-full"),
        ("552 Error: disk quota exceeded", "mailbox-full"),
        ("Host or domain name not found. Name service error for name=x type=MX", "host-unknown"),
        ("Unrouteable address", "host-unknown"),
        (
            "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
            "blocked",
        ),
        ("550 5.7.1 Message rejected as spam by Content Filtering", "spam"),
        (
            "550 5.7.26 Unauthenticated email from example.com is not accepted due to DMARC policy",
            "policy",
        ),
        ("552 5.3.4 Message size exceeds fixed limit", "message-too-big"),
        ("421 4.7.0 Too many concurrent SMTP connections from this IP", "rate-limited"),
        ("550 5.1.8 Domain of sender address a@b.example does not exist", "sender-rejected"),
        ("554 5.4.6 Hop count exceeded - possible mail loop", "network-error"),
        ("Connection timed out", "network-error"),
        ("retry timeout exceeded", "expired"),
        ("550 5.2.1 The email account that you tried to reach is disabled.", "suspended"),
        ("556 5.1.10 Recipient address has null MX", "not-accepted"),
        ("550 5.1.6 the address has been replaced by b@example.net", "has-moved"),
        ("554 relay access denied", "relay-denied"),
        ("550 5.7.1 virus detected in attachment", "virus"),
        ("procmail: Couldn't create /var/mail/x: No such user", "mailer-error"),
        ("550 5.7.1 Dynamic address: please use the smtp server of your ISP", "blocked"),
        ("554 Relay through your provider's mail server, not directly", "blocked"),
        (
            "552 5.7.0 This message was blocked because its content presents a security issue",
            "policy",
        ),
        (
            "ユーザー 山田 (yamada@example.jp) は Domino ディレクトリには見つかりません。",
            "user-unknown",
        ),
    ],
)
def test_reason_from_reply_text(text: str, reason: str) -> None:
    assert reason_for(text) == reason


def test_words_in_addresses_do_not_count() -> None:
    # "filtered@" and "blocked@" are mailbox names, not reasons
    assert reason_for("550 5.1.1 <filtered@example.net>: User unknown") == "user-unknown"
    assert reason_for("<blocked@example.net>: delivered", "") == "undefined"


def test_status_decides_when_the_words_say_nothing() -> None:
    assert reason_for("550 requested action not taken", "5.1.1") == "user-unknown"
    assert reason_for("", "4.4.7") == "expired"
    assert reason_for("", "5.7.25") == "blocked"
    assert reason_from_status("5.0.0") == ""
    assert reason_for("???", "5.0.0") == "undefined"


def test_a_quoted_remote_reply_beats_the_relays_summary() -> None:
    text = "5.1.0 - Unknown address error 550-'5.7.1 <x@example.net>... Access denied'"
    assert reason_for(text) == "blocked"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("after end of data: 550 User unknown", "filtered"),
        (
            ">>> DATA\n<<< 550 5.1.1 <a@b.example>... User unknown\n<<< 503 need RCPT",
            "user-unknown",
        ),
        (">>> DATA\n<<< 550 Unknown user a@b.example\n554 5.0.0 Service unavailable", "filtered"),
        ("550 : User unknown", "filtered"),
        ("550 5.7.1 <a@b.example>: Recipient address rejected: User unknown", "filtered"),
        ("in reply to RCPT TO command: 550 5.1.1 User unknown", "user-unknown"),
    ],
)
def test_user_unknown_after_data_or_under_a_policy_code_is_a_filter(text: str, reason: str) -> None:
    assert refine(reason_for(text), text, temporary=False) == reason


def test_mail_from_phase_means_the_sender_was_refused() -> None:
    text = (
        "SMTP error from remote mail server after MAIL FROM:<s@x.example>: "
        "553 x.example does not exist"
    )
    assert refine(reason_for(text), text, temporary=False) == "sender-rejected"


def test_temporary_host_unknown_is_a_network_error() -> None:
    assert refine("host-unknown", "DNS Error: NXDOMAIN", temporary=True) == "network-error"
    assert refine("host-unknown", "DNS Error: NXDOMAIN", temporary=False) == "host-unknown"


@pytest.mark.parametrize("reason", sorted(HARD_REASONS))
def test_dead_address_reasons_are_hard(reason: str) -> None:
    assert kind_for(reason, "5.1.1") == "hard"
    assert kind_for(reason, "4.1.1") == "hard"


@pytest.mark.parametrize(
    "reason",
    [
        "blocked",
        "spam",
        "policy",
        "filtered",
        "mailbox-full",
        "expired",
        "rate-limited",
        "suspended",
        "message-too-big",
        "system-error",
        "network-error",
        "undefined",
    ],
)
def test_sender_side_and_transient_reasons_are_soft_even_with_5xx(reason: str) -> None:
    assert kind_for(reason, "5.7.1") == "soft"


def test_null_mx_follows_the_status_class() -> None:
    assert kind_for("not-accepted", "5.1.10") == "hard"
    assert kind_for("not-accepted", "4.0.0") == "soft"
    assert kind_for("not-accepted", "", temporary=True) == "soft"


def test_every_reason_has_a_kind_and_the_names_are_ours() -> None:
    for reason in REASONS:
        assert kind_for(reason, "5.0.0") in ("hard", "soft")
        assert reason == reason.lower() and " " not in reason and "_" not in reason
