"""parse_message on hand-written reports: one of each shape the parser recognises."""

from __future__ import annotations

from hayate.bounces.parse import parse_message
from hayate.bounces.records import BounceRecord


def _one(data: bytes) -> BounceRecord:
    records = parse_message(data)
    assert len(records) == 1, records
    return records[0]


DSN = b"""\
Return-Path: <>
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: bounce+abc123@bounces.example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BND"

--BND
Content-Type: text/plain

<alice@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1 <alice@example.net>:
    Recipient address rejected: User unknown (in reply to RCPT TO command)
<bob@example.net>: host mx.example.net[192.0.2.1] said: 452 4.2.2 Mailbox full

--BND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Original-Envelope-Id: 42

Final-Recipient: rfc822; alice@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <alice@example.net>: Recipient address rejected:
    User unknown

Final-Recipient: rfc822; Bob@Example.NET
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

Final-Recipient: rfc822; carol@example.net
Action: delivered
Status: 2.0.0

--BND
Content-Type: text/rfc822-headers

Return-Path: <bounce+abc123@bounces.example.com>
From: shop@example.com
To: alice@example.net
Message-ID: <order-1@example.com>
Subject: Your receipt

--BND--
"""


def test_rfc3464_dsn_gives_one_record_per_recipient() -> None:
    records = parse_message(DSN)
    by_rcpt = {r.recipient: r for r in records}
    assert list(by_rcpt) == ["alice@example.net", "bob@example.net", "carol@example.net"]
    alice, bob, carol = by_rcpt.values()
    assert (alice.kind, alice.reason, alice.status) == ("hard", "user-unknown", "5.1.1")
    assert "Recipient address rejected: User unknown" in alice.remote_reply
    # Action: delayed is a warning (a temporary failure): the message is still queued there
    assert (bob.kind, bob.reason, bob.status) == ("soft", "delayed", "4.2.2")
    assert bob.remote_reply == "452 4.2.2 Mailbox full"
    assert (carol.kind, carol.reason) == ("delivered", "delivered")


def test_dsn_reports_the_original_envelope_sender_and_message_id() -> None:
    alice = parse_message(DSN)[0]
    assert alice.original_sender == "bounce+abc123@bounces.example.com"
    assert alice.original_message_id == "<order-1@example.com>"


def test_dsn_with_a_broken_mime_boundary_is_still_read() -> None:
    broken = DSN.replace(b'boundary="BND"', b'boundary="OTHER"')
    records = parse_message(broken)
    assert [(r.recipient, r.kind) for r in records][:2] == [
        ("alice@example.net", "hard"),
        ("bob@example.net", "soft"),
    ]


QMAIL = b"""\
Return-Path: <>
From: MAILER-DAEMON@mail.example.org
To: sender@example.com
Subject: failure notice

Hi. This is the qmail-send program at mail.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<gone@example.net>:
192.0.2.7 does not like recipient.
Remote host said: 550 No such user here
Giving up on 192.0.2.7.

<full@example.net>:
192.0.2.7 does not like recipient.
Remote host said: 552 Mailbox quota exceeded
Giving up on 192.0.2.7.

--- Below this line is a copy of the message.

Return-Path: <sender@example.com>
From: sender@example.com
To: gone@example.net, full@example.net
Message-ID: <m1@example.com>
Subject: hi

hello
"""


def test_qmail_prose_bounce() -> None:
    records = parse_message(QMAIL)
    assert [(r.recipient, r.kind, r.reason) for r in records] == [
        ("gone@example.net", "hard", "user-unknown"),
        ("full@example.net", "soft", "mailbox-full"),
    ]
    assert records[0].remote_reply.startswith("550 No such user here")
    assert records[0].original_sender == "sender@example.com"
    assert records[0].original_message_id == "<m1@example.com>"


EXIM = b"""\
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: sender@example.com
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  someone@example.net
    SMTP error from remote mail server after end of data:
    host mx.example.net [192.0.2.1]: 550 User unknown
  other@nxdomain.example
    Unrouteable address

------ This is a copy of the message, including all the headers. ------

Return-path: <sender@example.com>
Message-Id: <m2@example.com>
From: sender@example.com
To: someone@example.net

body
"""


def test_exim_bounce_and_user_unknown_after_data_is_a_filter() -> None:
    records = parse_message(EXIM)
    assert [(r.recipient, r.kind, r.reason) for r in records] == [
        ("someone@example.net", "soft", "filtered"),
        ("other@nxdomain.example", "hard", "host-unknown"),
    ]


ARF = b"""\
From: feedback@fbl.example.net
To: abuse@example.com
Subject: FW: complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"

--ARF
Content-Type: text/plain

This is an abuse report.

--ARF
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Example-FBL/1.0
Version: 1
Original-Mail-From: <bounce+xyz@bounces.example.com>
Original-Rcpt-To: <reader@example.net>
Original-Rcpt-To: <second@example.net>

--ARF
Content-Type: message/rfc822

Return-Path: <bounce+xyz@bounces.example.com>
From: news@example.com
To: undisclosed-recipients:;
Message-ID: <n1@example.com>
Subject: News

news
--ARF--
"""


def test_arf_feedback_report_is_a_complaint_per_original_rcpt_to() -> None:
    records = parse_message(ARF)
    assert [(r.recipient, r.kind, r.reason) for r in records] == [
        ("reader@example.net", "complaint", "abuse"),
        ("second@example.net", "complaint", "abuse"),
    ]
    assert records[0].original_sender == "bounce+xyz@bounces.example.com"
    assert records[0].original_message_id == "<n1@example.com>"


def test_arf_without_rcpt_to_uses_the_original_to() -> None:
    data = ARF.replace(b"Original-Rcpt-To: <reader@example.net>\n", b"").replace(
        b"Original-Rcpt-To: <second@example.net>\n", b""
    )
    data = data.replace(b"To: undisclosed-recipients:;", b"To: Reader <reader@example.net>")
    assert [(r.recipient, r.kind) for r in parse_message(data)] == [
        ("reader@example.net", "complaint")
    ]


def test_rfc3834_auto_reply() -> None:
    data = b"""\
Return-Path: <>
From: Away Person <away@example.net>
To: sender@example.com
Subject: Re: hello
Auto-Submitted: auto-replied

I am out until Monday.
"""
    record = _one(data)
    assert (record.recipient, record.kind) == ("away@example.net", "auto-reply")


def test_japanese_auto_reply_subject_in_iso_2022_jp() -> None:
    subject = "=?iso-2022-jp?b?GyRCPCtGMEpWPy4bKEI=?="  # 自動返信
    data = (
        f"""\
From: tanaka@example.jp
To: sender@example.com
Subject: {subject}
Content-Type: text/plain; charset=ISO-2022-JP

""".encode()
        + "ただいま不在です。".encode("iso-2022-jp")
    )
    record = _one(data)
    assert (record.recipient, record.kind) == ("tanaka@example.jp", "auto-reply")


def test_a_dsn_with_auto_submitted_auto_replied_is_still_a_bounce() -> None:
    data = DSN.replace(b"MIME-Version", b"Auto-Submitted: auto-replied\nMIME-Version")
    assert parse_message(data)[0].kind == "hard"


def test_amazon_ses_json_notifications() -> None:
    bounce = b"""\
From: no-reply@sns.amazonaws.com
To: ops@example.com
Subject: AWS Notification Message

{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[
{"emailAddress":"nobody@example.net","status":"5.1.1",
"diagnosticCode":"smtp; 550 5.1.1 user unknown"}]},
"mail":{"source":"bounce@example.com","messageId":"0100abc"}}
"""
    record = _one(bounce)
    assert (record.recipient, record.kind, record.reason, record.status) == (
        "nobody@example.net",
        "hard",
        "user-unknown",
        "5.1.1",
    )
    assert record.original_sender == "bounce@example.com"
    complaint = bounce.replace(b'"Bounce","bounce"', b'"Complaint","complaint"').replace(
        b"bouncedRecipients", b"complainedRecipients"
    )
    assert _one(complaint).kind == "complaint"


def test_japanese_carrier_bounce_in_iso_2022_jp() -> None:
    body = (
        "次の宛先へのメールは配信できませんでした。\n\n<taro@docomo.example.jp>\n"
        "宛先のメールアドレスは存在しないため配信できませんでした。\n"
    )
    data = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@docomo.example.jp>\n"
        b"To: sender@example.com\nSubject: Returned mail\n"
        b"Content-Type: text/plain; charset=ISO-2022-JP\n\n" + body.encode("iso-2022-jp")
    )
    record = _one(data)
    assert (record.recipient, record.kind, record.reason) == (
        "taro@docomo.example.jp",
        "hard",
        "user-unknown",
    )


def test_contact_addresses_and_the_sender_are_not_recipients() -> None:
    data = b"""\
From: postmaster@mx.example.org
To: sender@example.com
Subject: Delivery failure

Your message from sender@example.com could not be delivered.
For help, please contact <helpdesk@example.org>.

<gone@example.net>: 550 5.1.1 mailbox unavailable
"""
    assert [r.recipient for r in parse_message(data)] == ["gone@example.net"]


def test_a_message_that_is_no_report_is_unknown() -> None:
    data = b"From: friend@example.net\nTo: me@example.com\nSubject: lunch?\n\nNoon at our place?\n"
    record = _one(data)
    assert (record.recipient, record.kind) == ("", "unknown")


def test_unknown_message_still_carries_the_returned_envelope_sender() -> None:
    data = b"""\
From: MAILER-DAEMON@mx.example.org
To: bounce+q1@bounces.example.com
Subject: Returned mail

Something went wrong.

--- Original message follows.

Return-Path: <bounce+q1@bounces.example.com>
Received: from a by b
Message-ID: <q1@example.com>
From: shop@example.com

body
"""
    record = _one(data)
    assert record.kind == "unknown"
    assert record.original_sender == "bounce+q1@bounces.example.com"
    assert record.original_message_id == "<q1@example.com>"
