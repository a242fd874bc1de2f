"""A corpus of hand-written messages for the MIME tests, and the checks every message of it
must pass (parse without raising, sections that add up to the message).

Imported by the other ``test_mime*`` modules as ``tests.unit.mailbox.test_mime_corpus``.
Messages are written with ``\\n`` and stored with CRLF line ends (as Hayate stores mail),
except where the name says otherwise.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from hayate.mailbox import mime
from hayate.mailbox.mime import PackedList


def crlf(text: str, charset: str = "utf-8") -> bytes:
    return text.replace("\n", "\r\n").encode(charset)


SIMPLE = crlf("""\
Return-Path: <alice@example.com>
Received: from mx.example.com by mx.hayate.test; Mon, 3 Mar 2025 10:00:00 +0000
Date: Mon, 3 Mar 2025 09:59:58 +0100
From: Alice Example <alice@example.com>
Sender: list-bounces@lists.example.com
Reply-To: "Replies, Inc." <replies@example.com>
To: bob@hayate.test, "Carol C." <carol@hayate.test>
Cc: Dave <dave@hayate.test>
Bcc: eve@hayate.test
Subject: Re: [team] Lunch
 on Friday?
In-Reply-To: <parent@example.com>
Message-ID: <simple-1@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"; format=flowed
Content-Transfer-Encoding: 7bit

Hello Bob,

Lunch on Friday at noon?
--\x20
Alice
""")

MINIMAL_NO_TRAILING_CRLF = crlf("Subject: tiny\n\nno newline at the end")

HEADERS_ONLY = crlf("From: a@b.example\nSubject: only headers\n")

EMPTY_BODY = crlf("From: a@b.example\nSubject: empty\n\n")

ALTERNATIVE = crlf("""\
From: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?= <koeln@example.de>
To: bob@hayate.test
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=
Date: Tue, 4 Mar 2025 08:00:00 -0500
Message-ID: <alt-1@example.de>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="==alt=="

This is a multi-part message in MIME format.

--==alt==
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Sch=C3=B6ne Gr=C3=BC=C3=9Fe aus K=C3=B6ln, mit einer sehr langen Zeile, die =
umgebrochen wurde.
--==alt==
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGh0bWw+PGJvZHk+PHA+U2Now7ZuZSBHcsO8w59lIGF1cyBLw7ZsbjwvcD48L2JvZHk+PC9odG1s
Pgo=
--==alt==--

epilogue text
""")

MIXED_NESTED = crlf("""\
From: Reports <reports@example.org>
To: Undisclosed recipients:;
Subject: Quarterly report
Date: Wed, 5 Mar 2025 12:30:00 +0000
Message-ID: <mixed-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=outer
Content-Language: en

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=us-ascii

See the attached report.
--inner
Content-Type: text/html; charset=us-ascii

<p>See the attached <b>report</b>.</p>
--inner--
--outer
Content-Type: application/pdf;
 name="report.pdf"
Content-Transfer-Encoding: base64
Content-ID: <report@example.org>
Content-Description: The report
Content-Disposition: attachment;
 filename*0*=utf-8''%E5%A0%B1%E5%91%8A;
 filename*1*=%E6%9B%B8.pdf;
 size=81
Content-Language: en, ja
Content-Location: http://example.org/report.pdf

JVBERi0xLjQgZmFrZSBwZGYgY29udGVudAolUERGLTEuNCBmYWtlIHBkZiBjb250ZW50CiVQREYt
MS40IGZha2UgcGRmIGNvbnRlbnQK
--outer
Content-Type: image/png; name="=?utf-8?q?d=C3=A9j=C3=A0.png?="
Content-Disposition: inline; filename="déjà.png"
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--outer--
""")

FORWARDED = crlf("""\
From: bob@hayate.test
To: carol@hayate.test
Subject: Fwd: Quarterly report
Date: Thu, 6 Mar 2025 07:00:00 +0900
Message-ID: <fwd-1@hayate.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd"

--fwd
Content-Type: text/plain

Forwarding this.

--fwd
Content-Type: message/rfc822
Content-Disposition: attachment; filename="report.eml"

From: Reports <reports@example.org>
To: bob@hayate.test
Subject: Quarterly report
Date: Wed, 5 Mar 2025 12:30:00 +0000
Message-ID: <inner-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="in"

--in
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Numbers are up — 12 %.
--in
Content-Type: text/html; charset=utf-8

<p>Numbers are up</p>
--in--

--fwd--
""")

JAPANESE = (
    crlf("""\
From: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?= <nihon@example.jp>
To: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?= <taro@hayate.test>
Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsJE43b0w+GyhC?=
Date: Fri, 7 Mar 2025 10:00:00 +0900
Message-ID: <jp-1@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-2022-JP
Content-Transfer-Encoding: 7bit

""")
    + "こんにちは、世界。\r\n".encode("iso-2022-jp")
)

EIGHT_BIT = crlf("""\
From: José Núñez <jose@example.es>
To: bob@hayate.test
Subject: Café con leche ☕
Date: Sat, 8 Mar 2025 18:00:00 +0100
Message-ID: <8bit-1@example.es>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

¿Quedamos para un café? Mañana a las cinco.
""")

LATIN1_BODY = crlf("""\
From: Jürgen <juergen@example.de>
To: bob@hayate.test
Subject: =?iso-8859-1?q?Gr=FC=DFe?=
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

Schöne Grüße
""", "latin-1")

MISSING_BOUNDARY = crlf("""\
From: broken@example.com
Subject: multipart without a boundary
Content-Type: multipart/mixed

--x
Content-Type: text/plain

part
--x--
""")

UNTERMINATED = crlf("""\
From: broken@example.com
Subject: unterminated multipart
Content-Type: multipart/mixed; boundary="b1"

preamble
--b1
Content-Type: text/plain

first part
--b1
Content-Type: text/html

<p>second part, never closed</p>
""")

BAD_HEADERS = crlf("""\
From: broken@example.com
this line has no colon
Subject: bad headers
Content-Type: ;;; garbage
Content-Transfer-Encoding: x-unknown

body after bad headers
""")

DIGEST = crlf("""\
From: digest@lists.example.com
Subject: Digest, Vol 1
Content-Type: multipart/digest; boundary="dig"

--dig

From: one@example.com
Subject: first

first message
--dig
Content-Type: message/rfc822

From: two@example.com
Subject: second

second message
--dig
Content-Type: text/plain

not a message
--dig--
""")

TOP_RFC822 = crlf("""\
From: wrapper@example.com
Subject: a message that is a message
Content-Type: message/rfc822

From: inner@example.com
Subject: inside
Content-Type: text/plain; charset=us-ascii

inner body
line two
""")

ADDRESSES = crlf("""\
From: "Last, First" <first.last@example.com> (a comment), plain@example.com
Sender: <>
Reply-To: Team: alpha@example.com, "Beta B." <beta@example.com>;, solo@example.com
To: nodomain, <@relay.example.com:routed@example.com>, "Quoted \\"Q\\" Name" <q@example.com>
Cc: Friends:;
Bcc: =?utf-8?q?J=C3=BCrgen?= <juergen@example.de>
Subject: address syntax
Date: not a date at all
Message-ID: <addr-1@example.com>

body
""")

PARAMS = crlf("""\
From: params@example.com
Subject: parameters
MIME-Version: 1.0
Content-Type: TEXT/X-Custom; Charset=ISO-8859-1; name="a \\"quoted\\" name";
 EMPTY=""; title*=us-ascii'en'This%20is%20%2A%2A%2Afun%2A%2A%2A
Content-Disposition: ATTACHMENT; Filename="x.txt"
Content-Transfer-Encoding: Quoted-Printable

caf=E9
""")

LF_ONLY = (
    b"From: lf@example.com\nSubject: bare LF\nContent-Type: text/plain\n\nline one\nline two\n"
)

NESTED_RFC822_IN_RFC822 = crlf("""\
From: outer@example.com
Subject: outer
Content-Type: multipart/mixed; boundary=o

--o
Content-Type: message/rfc822

From: middle@example.com
Subject: middle
Content-Type: message/rfc822

From: deepest@example.com
Subject: deepest

deep body
--o--
""")

MAIN: dict[str, bytes] = {
    "simple": SIMPLE,
    "minimal_no_trailing_crlf": MINIMAL_NO_TRAILING_CRLF,
    "headers_only": HEADERS_ONLY,
    "empty_body": EMPTY_BODY,
    "alternative": ALTERNATIVE,
    "mixed_nested": MIXED_NESTED,
    "forwarded": FORWARDED,
    "japanese": JAPANESE,
    "eight_bit": EIGHT_BIT,
    "latin1_body": LATIN1_BODY,
    "missing_boundary": MISSING_BOUNDARY,
    "unterminated": UNTERMINATED,
    "bad_headers": BAD_HEADERS,
    "digest": DIGEST,
    "top_rfc822": TOP_RFC822,
    "addresses": ADDRESSES,
    "params": PARAMS,
    "lf_only": LF_ONLY,
    "nested_rfc822": NESTED_RFC822_IN_RFC822,
}
# Edge cases met in real mail or in Dovecot's parser (\\n becomes CRLF).
EDGE_CASES: dict[str, bytes] = {
    "ct_nosub": crlf("Subject: a\nContent-Type: text\n\nhello\n"),
    "ct_garbage": crlf("Subject: b\nContent-Type: garbage\n\nhello\n"),
    "ct_html_name": crlf("Subject: c\nContent-Type: text/html; name=\"x.html\"\n\n<p>\n"),
    "ct_param_noval": crlf("Subject: d\nContent-Type: text/plain; charset; format=flowed\n\nhi\n"),
    "mp_noparts": crlf(
        "Subject: e\nContent-Type: multipart/mixed; boundary=zz\n\n"
        "just text, no delimiter\n"
    ),
    "comments": crlf(
        "From: plain@example.com (Plain Name)\n"
        "To: Name <a@b.example> (c), (only comment) x@y.example\n"
        "Cc: \"john doe\"@example.com, Joe Q. Public <jq@example.com>\n"
        "Bcc: =?utf-8?q?caf=C3=A9?= \"Quoted =?utf-8?q?caf=C3=A9?=\" <qc@example.com>\n"
        "Subject:\nMessage-ID: no-brackets@x\nIn-Reply-To: <a@b> <c@d> (comment)\n\n"
        "body\n"
    ),
    "multi_from": crlf(
        "From: first@example.com\nFrom: second@example.com\nSubject: one  \n"
        "Subject: two\nDate:   Mon, 1 Jan 2024 00:00:00 +0000   \n\nx\n"
    ),
    "rfc2231_cont": crlf(
        "Subject: f\n"
        "Content-Type: application/octet-stream; name*0=\"long\"; name*1=\"name.bin\";"
        " x*0*=utf-8''%C3%A9; x*1=\"b c\"; y*1=\"skip\"; z*0=\"z0\"; z*2=\"z2\"\n"
        "Content-Disposition: inline\n\nAAAA\n"
    ),
    "padding_boundary": crlf(
        "Subject: g\nContent-Type: multipart/mixed; boundary=\"pp\"\n\n--pp   \n"
        "Content-Type: text/plain\n\none\n--ppx\nnot a delimiter?\n--pp--  \nepi\n"
    ),
    "b64_rfc822": crlf(
        "Subject: h\nContent-Type: multipart/mixed; boundary=q\n\n--q\n"
        "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
        "U3ViamVjdDogeAoKeQo=\n--q--\n"
    ),
    "prefix_boundaries": crlf(
        "Subject: i\nContent-Type: multipart/mixed; boundary=a\n\n--a\n"
        "Content-Type: multipart/alternative; boundary=ab\n\n--ab\n\ninner1\n--ab\n\n"
        "inner2\n--a\n\nouter2\n--a--\n"
    ),
    "mbox_from": crlf("From someone Mon Jan  1 00:00:00 2024\nSubject: j\n\nbody\n"),
    "part_no_blank": crlf(
        "Subject: k\nContent-Type: multipart/mixed; boundary=n\n\n--n\n"
        "Content-Type: text/html\n--n\n\n\n--n--\n"
    ),
    "group_from": crlf(
        "From: Grp: a@x.example, b@x.example;\nTo: , ,a@b.example,,\nSubject: l\n\nx\n"
    ),
    "close_no_crlf": crlf(
        "Subject: m\nContent-Type: multipart/mixed; boundary=c\n\n--c\n\nlast\n--c--"
    ),
    "params_order": crlf(
        "Subject: n\nContent-Type: text/plain; format=flowed; delsp=yes\n"
        "Content-Disposition: attachment; filename=a.txt; creation-date=\"x\"\n"
        "Content-Language: de\nContent-Location: a.txt\n"
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\nx\n"
    ),
    "dup_ct": crlf("Subject: o\nContent-Type: text/html\nContent-Type: text/plain\n\nx\n"),
    "crlf_only_body": crlf("Subject: p\n\n\n"),
    "angle_in_name": crlf(
        "From: \"a <b>\" <c@d.example>, <e@f.example>\nTo: undisclosed-recipients:;\n"
        "Subject: q\n\nx\n"
    ),
    "semicolon_ct": crlf("Subject: r\nContent-Type: text/plain;\n\nx\n"),
    "uppercase_mp": crlf(
        "Subject: s\nContent-Type: MULTIPART/Mixed; BOUNDARY=\"UP\"\n\n--UP\n\nx\n"
        "--UP--\n"
    ),
    "tab_folded": crlf("Subject: t\n\tfolded with tab\nTo: a@b.example,\n  c@d.example\n\nx\n"),
    "addr_empty": crlf("Subject: u\nTo:\nCc: ,\nBcc: Grp: a@b.example\nReply-To:   \n\nx\n"),
    "dup_fields": crlf(
        "Subject: v\nMessage-ID: <first@x>\nMessage-ID: <second@x>\nDate: d1\n"
        "Date: d2\nIn-Reply-To: <r1@x>\nIn-Reply-To: <r2@x>\nSender: s1@x.example\n"
        "Sender: s2@x.example\n\nx\n"
    ),
    "global": crlf(
        "Subject: w\nContent-Type: multipart/mixed; boundary=g\n\n--g\n"
        "Content-Type: message/global\n\nFrom: x@y.example\nSubject: inner\n\nbody\n"
        "--g\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n--g--\n"
    ),
    "close_first": crlf(
        "Subject: x\nContent-Type: multipart/mixed; boundary=cf\n\npre\n--cf--\nepi\n"
    ),
    "fold1": crlf(
        "Subject: a\n\t\tb\nTo: x@y.example\nIn-Reply-To: <a@b>\n  \t<c@d>\n"
        "Message-ID:\t<tab@x>\nDate: one\ttwo\n\nx\n"
    ),
    "fold2": crlf("Subject: a \n b\nFrom: \"Folded\n Name\" <f@x.example>\n\nx\n"),
    "ws1": crlf("Subject:   a\t\tb  c  \nFrom: \"x\ty  z\" <f@x.example>\n\nx\n"),
    "ws2": crlf("Subject: a\n b\tc  d\nDate: a\n\tb\n\nx\n"),
}

CORPUS: dict[str, bytes] = {**MAIN, **EDGE_CASES}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_corpus_message_parses_and_renders(name: str) -> None:
    data = CORPUS[name]
    msg = mime.parse(data)
    mime.envelope(msg)
    mime.bodystructure(msg, extended=True)
    mime.bodystructure(msg, extended=False)
    assert mime.section(data, msg, (), None, ()) == data
    header = mime.section(data, msg, (), "HEADER", ())
    text = mime.section(data, msg, (), "TEXT", ())
    assert header is not None and text is not None
    assert header + text == data


# -- reading IMAP values back, to compare trees with what Dovecot sends -----------------

_ATOM = re.compile(rb"[^ ()\[{\"]+(?:\[[^\]]*\])?(?:<\d+>)?")


def read_value(text: bytes, pos: int = 0) -> tuple[Any, int]:
    """One IMAP value from ``text[pos:]`` as a tree: NIL → None, numbers → int, strings
    (quoted or literal) → bytes, atoms → ("ATOM", bytes), lists → list, or PackedList
    when some items follow each other without a space (``(a)(b)``)."""
    head = text[pos : pos + 1]
    if head == b"(":
        items: list[Any] = []
        packed = 0
        pos += 1
        spaced = True
        while True:
            if text[pos : pos + 1] == b" ":
                spaced = True
                pos += 1
                continue
            if text[pos : pos + 1] == b")":
                if packed:
                    return PackedList(items, packed), pos + 1
                return items, pos + 1
            if not spaced and items:
                packed = len(items) + 1
            value, pos = read_value(text, pos)
            items.append(value)
            spaced = False
    if head == b'"':
        out = bytearray()
        pos += 1
        while text[pos : pos + 1] != b'"':
            if text[pos : pos + 1] == b"\\":
                pos += 1
            out += text[pos : pos + 1]
            pos += 1
        return bytes(out), pos + 1
    if head == b"{":
        close = text.index(b"}", pos)
        size = int(text[pos + 1 : close])
        start = close + 3
        return text[start : start + size], start + size
    match = _ATOM.match(text, pos)
    assert match is not None, text[pos : pos + 20]
    token = match.group()
    if token == b"NIL":
        return None, match.end()
    if token.isdigit():
        return int(token), match.end()
    return ("ATOM", token), match.end()


def imap(text: str | bytes) -> Any:
    """The tree of one IMAP value written out, e.g. ``imap('("a" NIL)')`` (8-bit bytes
    that are not UTF-8 written as surrogate escapes)."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    value, end = read_value(data)
    assert end == len(data), data[end:]
    return value


def _packed(items: Any) -> int:
    """How many leading items go without spaces (one alone is the same as none)."""
    packed = items.packed if isinstance(items, PackedList) else 0
    return packed if packed > 1 else 0


def same_tree(mine: Any, theirs: Any) -> bool:
    """Equal as IMAP would send them: str and bytes by their UTF-8 bytes, lists item by
    item, and packed (no space between items) exactly where the other is."""
    if isinstance(mine, str):
        mine = mine.encode("utf-8")
    if isinstance(mine, (list, tuple)):
        if not isinstance(theirs, list) or len(mine) != len(theirs):
            return False
        if _packed(mine) != _packed(theirs):
            return False
        return all(same_tree(a, b) for a, b in zip(mine, theirs, strict=True))
    return type(mine) is type(theirs) and bool(mine == theirs)


def show(tree: Any) -> str:
    """A tree written back out (for assertion messages)."""
    if tree is None:
        return "NIL"
    if isinstance(tree, int):
        return str(tree)
    if isinstance(tree, (str, bytes)):
        raw = tree.encode("utf-8") if isinstance(tree, str) else tree
        text = raw.decode("utf-8", "surrogateescape")
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(tree, tuple) and len(tree) == 2 and tree[0] == "ATOM":
        return str(tree[1].decode())
    packed = tree.packed if isinstance(tree, PackedList) else 0
    out = []
    for index, item in enumerate(tree):
        if index and not index < packed:
            out.append(" ")
        out.append(show(item))
    return "(" + "".join(out) + ")"
