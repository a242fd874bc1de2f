"""Broken and hostile inputs: parse_message returns records and never raises."""

from __future__ import annotations

import random
import time

import pytest
from tests.unit.bounces.test_parse import ARF, DSN, EXIM, QMAIL

from hayate.bounces.parse import parse_message

BROKEN = [
    b"",
    b"\x00\xff\xfe" * 100,
    b"From: x\n\n",
    b"Content-Type: multipart/report; boundary=\n\n--\n--\n",
    b'Content-Type: multipart/mixed; boundary="a"\n\n--a\nContent-Type: message/rfc822\n\n--a--',
    b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822;\nAction:\nStatus: 9.9\n",
    b"Content-Type: text/plain; charset=no-such-charset\nContent-Transfer-Encoding: base64\n\n%%%",
    b"Content-Type: text/plain; charset=iso-2022-jp\n\n\x1b$B\xff\xff\x1b(B <a@b.example>: 550",
    b"Subject: =?utf-8?q?=ff=fe?= =?bogus?x?zz?=\nFrom: <<<@@@>>>\n\nbody",
    b"Content-Type: multipart/report; boundary=x\n\n"
    + b"--x\nContent-Type: multipart/mixed; boundary=x\n\n" * 200,
    b"From: MAILER-DAEMON\n\n" + b"a@b.example " * 5000,
    b'{"notificationType":"Bounce","bounce":{"bouncedRecipients":[1,null,{"emailAddress":5}]}}',
]


@pytest.mark.parametrize("data", BROKEN, ids=range(len(BROKEN)))
def test_broken_messages_never_raise(data: bytes) -> None:
    records = parse_message(data)
    assert records, "a record (at least 'unknown') always comes back"
    for record in records:
        assert record.kind in ("hard", "soft", "complaint", "auto-reply", "delivered", "unknown")


def test_random_mutations_of_real_shapes_never_raise() -> None:
    rng = random.Random(1234)
    started = time.perf_counter()
    samples = [DSN, QMAIL, EXIM, ARF]
    for n in range(400):
        data = bytearray(samples[n % len(samples)])
        for _ in range(rng.randint(1, 12)):
            op = rng.random()
            pos = rng.randrange(len(data))
            if op < 0.4:
                data[pos] = rng.randrange(256)
            elif op < 0.7:
                del data[pos : pos + rng.randint(1, 40)]
            else:
                data[pos:pos] = rng.choice([b"\n", b"--BND\n", b":", b"\x1b$B", b"<", b"@"])
        assert parse_message(bytes(data))
    assert time.perf_counter() - started < 10
