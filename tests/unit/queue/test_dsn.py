"""Tests for hayate.queue.dsn: the DSNs we generate, read back with Python's email package."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage, Message
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hayate.queue.dsn import FailedRecipient, build_dsn, should_bounce

ARRIVAL = 1_700_000_000.0
NOW = ARRIVAL + 3600
ORIGINAL = (
    b"From: Alice <alice@shop.test>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: Your receipt\r\n"
    b"Message-ID: <r-1@shop.test>\r\n"
    b"\r\n"
    b"SECRET-BODY-LINE the body stays home\r\n"
)
UNKNOWN = FailedRecipient(
    address="bob@example.net",
    status="5.1.1",
    diagnostic="550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown",
    remote_mta="mx1.example.net[192.0.2.10]:25",
    last_attempt=NOW - 5,
    original_recipient="Bob@Example.NET",
)
FULL_BOX = FailedRecipient(
    address="carol@example.org",
    status="5.2.2",
    diagnostic="552 5.2.2 mailbox full",
    remote_mta=None,
    last_attempt=None,
    original_recipient=None,
)


def make(**overrides: Any) -> bytes:
    args: dict[str, Any] = {
        "reporting_mta": "mx.hayate.test",
        "original_sender": "alice@shop.test",
        "original_queue_id": "4XyZ0001",
        "arrival_time": ARRIVAL,
        "failures": [UNKNOWN, FULL_BOX],
        "original_message": ORIGINAL,
        "now": NOW,
    }
    args.update(overrides)
    return build_dsn(**args)


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(msg: Message) -> list[Message]:
    payload = msg.get_payload()
    assert isinstance(payload, list)
    out = [p for p in payload if isinstance(p, Message)]
    assert len(out) == len(payload)
    return out


def status_groups(part: Message) -> list[Message]:
    return [g for g in parts(part) if len(g.keys()) > 0]


def text_of(part: Message) -> str:
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data.decode("utf-8")


def raw_groups(raw: bytes, content_type: str) -> list[dict[str, str]]:
    """The field groups of the status part, read from the raw bytes (works for the global type)."""
    text = raw.decode("utf-8")
    start = text.index(f"Content-Type: {content_type}\r\n")
    body_start = text.index("\r\n\r\n", start) + 4
    body = text[body_start : text.index("\r\n--=_", body_start)]
    groups = []
    for chunk in body.split("\r\n\r\n"):
        parsed = email.message_from_string(chunk + "\r\n", policy=policy.default)
        groups.append({k: str(v) for k, v in parsed.items()})
    return groups


def test_top_level_headers_and_structure() -> None:
    msg = parse(make())
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@mx.hayate.test>"
    assert msg["To"].addresses[0].addr_spec == "alice@shop.test"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"].datetime.timestamp() == NOW
    assert re.fullmatch(r"<[^<>@\s]+@mx\.hayate\.test>", msg["Message-ID"])
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    kinds = [p.get_content_type() for p in parts(msg)]
    assert kinds == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert not msg.defects


def test_human_part_lists_each_recipient_and_reply() -> None:
    text = text_of(parts(parse(make()))[0])
    assert "<bob@example.net>:" in text
    assert "mx1.example.net said: 550 5.1.1 <bob@example.net>: Recipient" in text
    assert "<carol@example.org>:" in text
    assert "552 5.2.2 mailbox full" in text


def test_per_message_and_per_recipient_fields() -> None:
    groups = status_groups(parts(parse(make(envid="ENV-42")))[1])
    assert len(groups) == 3
    head, bob, carol = groups
    assert head["Reporting-MTA"] == "dns; mx.hayate.test"
    assert head["X-Hayate-Queue-ID"] == "4XyZ0001"
    assert head["Original-Envelope-Id"] == "ENV-42"
    assert email.utils.parsedate_to_datetime(head["Arrival-Date"]).timestamp() == ARRIVAL

    assert bob["Final-Recipient"] == "rfc822; bob@example.net"
    assert bob["Original-Recipient"] == "rfc822; Bob@Example.NET"
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; mx1.example.net"
    assert bob["Diagnostic-Code"] == f"smtp; {UNKNOWN.diagnostic}"
    assert email.utils.parsedate_to_datetime(bob["Last-Attempt-Date"]).timestamp() == NOW - 5
    assert "Will-Retry-Until" not in bob

    assert carol["Final-Recipient"] == "rfc822; carol@example.org"
    assert carol["Status"] == "5.2.2"
    for absent in ("Original-Recipient", "Remote-MTA", "Last-Attempt-Date"):
        assert absent not in carol


def test_no_envid_means_no_original_envelope_id() -> None:
    head = status_groups(parts(parse(make()))[1])[0]
    assert "Original-Envelope-Id" not in head


def test_original_headers_returned_without_the_body() -> None:
    raw = make()
    returned = text_of(parts(parse(raw))[2])
    lines = returned.splitlines()
    assert "Subject: Your receipt" in lines
    assert "Message-ID: <r-1@shop.test>" in lines
    assert b"\r\nMessage-ID: <r-1@shop.test>\r\n" in raw
    assert b"SECRET-BODY-LINE" not in raw


def test_include_full_returns_the_whole_small_message() -> None:
    msg = parse(make(include_full=True))
    returned = parts(msg)[2]
    assert returned.get_content_type() == "message/rfc822"
    inner = parts(returned)[0]
    assert inner["Subject"] == "Your receipt"
    assert "SECRET-BODY-LINE" in str(inner.get_payload())


def test_include_full_falls_back_to_headers_when_too_big() -> None:
    big = ORIGINAL + b"x" * 70 + b"\r\n" * 1000
    raw = make(include_full=True, original_message=big, full_limit=1000)
    assert parts(parse(raw))[2].get_content_type() == "text/rfc822-headers"
    assert b"SECRET-BODY-LINE" not in raw


def test_crlf_everywhere_even_from_lf_input() -> None:
    lf_original = ORIGINAL.replace(b"\r\n", b"\n")
    for raw in (
        make(original_message=lf_original),
        make(original_message=lf_original, include_full=True),
    ):
        assert b"\n" in raw
        assert re.search(rb"(?<!\r)\n", raw) is None, "bare LF"
        assert re.search(rb"\r(?!\n)", raw) is None, "bare CR"
        assert raw.endswith(b"\r\n")
        assert parse(raw)["Subject"]


def test_long_diagnostic_is_folded_and_unfolds_to_the_reply() -> None:
    reply = "550 5.7.1 " + " ".join(f"word{i}" for i in range(120))
    failure = FailedRecipient("bob@example.net", "5.7.1", reply, None, None, None)
    raw = make(failures=[failure])
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    start = next(i for i, line in enumerate(lines) if line.startswith(b"Diagnostic-Code:"))
    assert lines[start + 1].startswith(b" ")  # continuation lines start with white space
    bob = status_groups(parts(parse(raw))[1])[1]
    assert bob["Diagnostic-Code"] == f"smtp; {reply}"


def test_multiline_reply_cannot_inject_fields() -> None:
    reply = "550-5.1.1 first line\r\n550 5.1.1 second line\r\nX-Injected: yes\n"
    failure = FailedRecipient("bob@example.net", "5.1.1", reply, None, None, None)
    raw = make(failures=[failure])
    bob = status_groups(parts(parse(raw))[1])[1]
    assert "X-Injected" not in bob
    assert bob["Diagnostic-Code"] == (
        "smtp; 550-5.1.1 first line 550 5.1.1 second line X-Injected: yes"
    )


def test_unbreakable_token_stays_under_the_hard_line_limit() -> None:
    failure = FailedRecipient("bob@example.net", "5.0.0", "550 " + "z" * 3000, None, None, None)
    raw = make(failures=[failure])
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_non_smtp_diagnostic_and_bad_status() -> None:
    failure = FailedRecipient(
        "bob@example.net",
        "bogus",
        "connect to mx1.example.net: Connection refused",
        None,
        None,
        None,
    )
    bob = status_groups(parts(parse(make(failures=[failure])))[1])[1]
    assert bob["Status"] == "5.0.0"
    assert bob["Diagnostic-Code"] == "X-Hayate; connect to mx1.example.net: Connection refused"


def test_delayed_report() -> None:
    failure = FailedRecipient(
        "bob@example.net",
        "4.4.1",
        "connect to mx1.example.net: timed out",
        "mx1.example.net",
        NOW - 60,
        None,
    )
    until = ARRIVAL + 5 * 86400
    msg = parse(make(failures=[failure], action="delayed", retry_until=until))
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    bob = status_groups(parts(msg)[1])[1]
    assert bob["Action"] == "delayed"
    assert bob["Status"] == "4.4.1"
    assert email.utils.parsedate_to_datetime(bob["Will-Retry-Until"]).timestamp() == until
    text = text_of(parts(msg)[0])
    assert "keep trying" in text


def test_delayed_default_status_is_temporary() -> None:
    failure = FailedRecipient("bob@example.net", "", "timed out", None, None, None)
    bob = status_groups(parts(parse(make(failures=[failure], action="delayed")))[1])[1]
    assert bob["Status"] == "4.0.0"


def test_non_ascii_addresses_use_global_delivery_status() -> None:
    failure = FailedRecipient(
        "δοκιμή@παράδειγμα.δοκιμή",
        "5.1.1",
        "550 5.1.1 unknown user",
        None,
        None,
        "Δοκιμή@παράδειγμα.δοκιμή",
    )
    original = "From: 山田 <山田@例え.テスト>\r\nSubject: こんにちは\r\n\r\nbody\r\n".encode()
    raw = make(original_sender="山田@例え.テスト", failures=[failure], original_message=original)
    # The whole report is valid UTF-8 (RFC 6532 headers); the str parser reads them as such.
    msg = email.message_from_string(raw.decode("utf-8"), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    kinds = [p.get_content_type() for p in parts(msg)]
    assert kinds == ["text/plain", "message/global-delivery-status", "message/global-headers"]
    assert msg["To"].addresses[0].addr_spec == "山田@例え.テスト"
    groups = raw_groups(raw, "message/global-delivery-status")
    assert groups[1]["Final-Recipient"] == "utf-8; δοκιμή@παράδειγμα.δοκιμή"
    assert groups[1]["Original-Recipient"] == "utf-8; Δοκιμή@παράδειγμα.δοκιμή"
    assert groups[0]["X-Hayate-Sender"] == "utf-8; 山田@例え.テスト"
    assert "Subject: こんにちは".encode() in raw
    assert b"Content-Transfer-Encoding: 8bit" in raw
    assert re.search(rb"(?<!\r)\n", raw) is None


def test_ascii_report_is_7bit() -> None:
    raw = make()
    assert raw.isascii()
    assert b"Content-Transfer-Encoding: 8bit" not in raw


def test_output_is_deterministic_and_ids_differ_per_report() -> None:
    assert make() == make()
    first, later = parse(make()), parse(make(now=NOW + 1))
    assert first["Message-ID"] != later["Message-ID"]
    boundary = first.get_boundary()
    assert boundary is not None
    assert boundary not in make(now=NOW + 1).decode()


def test_refuses_null_sender_and_empty_failures() -> None:
    with pytest.raises(ValueError):
        make(original_sender="")
    with pytest.raises(ValueError):
        make(original_sender="<>")
    with pytest.raises(ValueError):
        make(failures=[])


@pytest.mark.parametrize(
    ("sender", "headers", "expected"),
    [
        ("alice@shop.test", b"Subject: hi\r\n\r\nbody\r\n", True),
        ("postmaster@shop.test", b"Subject: hi\r\n", True),
        ("news@shop.test", b"Precedence: bulk\r\nAuto-Submitted: no\r\n", True),
        ("", b"Subject: hi\r\n", False),
        ("<>", b"Subject: hi\r\n", False),
        ("MAILER-DAEMON@mx.example.net", b"Subject: hi\r\n", False),
        ("mailer-daemon", b"Subject: hi\r\n", False),
        ("<Mailer-Daemon@mx.example.net>", b"Subject: hi\r\n", False),
        ("double-bounce@mx.example.net", b"Subject: hi\r\n", False),
        ("alice@shop.test", b"Auto-Submitted: auto-replied\r\n", False),
        ("alice@shop.test", b"Auto-Submitted: Auto-Generated (vacation)\r\n", False),
        ("alice@shop.test", b"Auto-Submitted: auto-notified; owner-email=x@y\r\n", False),
        (
            "alice@shop.test",
            b'Content-Type: multipart/report; report-type=delivery-status;\r\n boundary="b"\r\n',
            False,
        ),
        (
            "alice@shop.test",
            b"Content-Type: Multipart/Report; report-type=feedback-report; boundary=x\n",
            False,
        ),
        ("alice@shop.test", b"Subject: hi\n\nAuto-Submitted: auto-replied\n", True),
    ],
)
def test_should_bounce(sender: str, headers: bytes, expected: bool) -> None:
    assert should_bounce(sender, headers) is expected


def test_never_a_bounce_about_our_own_bounce() -> None:
    dsn = make()
    assert should_bounce("", dsn) is False
    assert should_bounce("alice@shop.test", dsn) is False  # even with a forged sender


@settings(max_examples=60, deadline=None)
@given(
    diagnostic=st.text(
        alphabet=st.characters(codec="ascii", exclude_categories=["Cs"]), max_size=400
    ),
    address=st.from_regex(r"[a-z0-9.]{1,20}@[a-z0-9]{1,10}\.test", fullmatch=True),
)
def test_any_reply_text_gives_a_well_formed_report(diagnostic: str, address: str) -> None:
    failure = FailedRecipient(address, "5.0.0", diagnostic, None, None, None)
    raw = make(failures=[failure])
    assert re.search(rb"(?<!\r)\n|\r(?!\n)", raw) is None
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = parse(raw)
    groups = status_groups(parts(msg)[1])
    assert len(groups) == 2
    assert groups[1]["Final-Recipient"] == f"rfc822; {address}"
    expected = " ".join(re.sub(r"[\x00-\x1f\x7f]+", " ", diagnostic).split())
    got = groups[1].get("Diagnostic-Code")
    if expected:
        assert got is not None
        assert " ".join(str(got).split(";", 1)[1].split()) == expected
    else:
        assert got is None
