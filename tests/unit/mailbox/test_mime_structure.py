"""ENVELOPE, BODYSTRUCTURE and BODY of every corpus message, against what Dovecot 2.3.19
sends for the same message (captured from a real Dovecot; ``test_mime_dovecot`` compares
live). Trees are compared item by item, including where RFC 3501 writes items back to back
(``(a)(b)``). The few places where Hayate differs on purpose say so.
"""

from __future__ import annotations

import pytest
from tests.unit.mailbox.test_mime_corpus import CORPUS, EIGHT_BIT, LATIN1_BODY, SIMPLE, imap, show
from tests.unit.mailbox.test_mime_corpus import same_tree as same

from hayate.imap import response
from hayate.mailbox import mime

# name: (ENVELOPE, BODYSTRUCTURE, BODY) as Dovecot writes them
DOVECOT: dict[str, tuple[str, str, str]] = {
    "addr_empty": (
        (
            '(NIL "u" NIL NIL NIL NIL ((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) ((NIL NIL '
            '"Grp" NIL)(NIL NIL "a" "b.example")(NIL NIL NIL NIL)) NIL NIL)'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "addresses": (
        (
            '("not a date at all" "address syntax" (("Last, First" NIL "first.last" '
            '"example.com")(NIL NIL "plain" "example.com")) ((NIL NIL "MISSING_MAILBOX" '
            '"MISSING_DOMAIN")) ((NIL NIL "Team" NIL)(NIL NIL "alpha" "example.com")("Beta B." '
            'NIL "beta" "example.com")(NIL NIL NIL NIL)(NIL NIL "solo" "example.com")) ((NIL '
            'NIL "nodomain" "MISSING_DOMAIN")(NIL "@relay.example.com" "routed" "example.com")'
            '("Quoted \\"Q\\" Name" NIL "q" "example.com")) ((NIL NIL "Friends" NIL)(NIL NIL '
            'NIL NIL)) (("=?utf-8?q?J=C3=BCrgen?=" NIL "juergen" "example.de")) NIL '
            '"<addr-1@example.com>")'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1)',
    ),
    "alternative": (
        (
            '("Tue, 4 Mar 2025 08:00:00 -0500" "=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=" '
            '(("=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=" NIL "koeln" "example.de")) '
            '(("=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=" NIL "koeln" "example.de")) '
            '(("=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=" NIL "koeln" "example.de")) ((NIL NIL '
            '"bob" "hayate.test")) NIL NIL NIL "<alt-1@example.de>")'
        ),
        (
            '(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 97 1 NIL NIL NIL '
            'NIL)("text" "html" ("charset" "utf-8") NIL NIL "base64" 82 1 NIL NIL NIL NIL) '
            '"alternative" ("boundary" "==alt==") NIL NIL NIL)'
        ),
        (
            '(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 97 1)("text" '
            '"html" ("charset" "utf-8") NIL NIL "base64" 82 1) "alternative")'
        ),
    ),
    "angle_in_name": (
        (
            '(NIL "q" (("a <b>" NIL "c" "d.example")(NIL NIL "e" "f.example")) (("a <b>" NIL '
            '"c" "d.example")(NIL NIL "e" "f.example")) (("a <b>" NIL "c" "d.example")(NIL NIL '
            '"e" "f.example")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL '
            'NIL NIL NIL)'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "b64_rfc822": (
        '(NIL "h" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '(("message" "rfc822" NIL NIL NIL "base64" 22 (NIL NIL NIL NIL NIL NIL NIL NIL NIL '
            'NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) 1 '
            'NIL NIL NIL NIL) "mixed" ("boundary" "q") NIL NIL NIL)'
        ),
        (
            '(("message" "rfc822" NIL NIL NIL "base64" 22 (NIL NIL NIL NIL NIL NIL NIL NIL NIL '
            'NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) 1) "mixed")'
        ),
    ),
    "bad_headers": (
        (
            '(NIL "bad headers" ((NIL NIL "broken" "example.com")) ((NIL NIL "broken" '
            '"example.com")) ((NIL NIL "broken" "example.com")) NIL NIL NIL NIL NIL)'
        ),
        # Dovecot: ("" "" NIL NIL NIL "x-unknown" 24 ...); RFC 2045 §5.2: text/plain
        '("text" "plain" ("charset" "us-ascii") NIL NIL "x-unknown" 24 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "x-unknown" 24 1)',
    ),
    "close_first": (
        '(NIL "x" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) '
            '"mixed" ("boundary" "cf") NIL NIL NIL)'
        ),
        '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")',
    ),
    "close_no_crlf": (
        '(NIL "m" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0 NIL NIL NIL NIL) '
            '"mixed" ("boundary" "c") NIL NIL NIL)'
        ),
        '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0) "mixed")',
    ),
    "comments": (
        (
            '(NIL "" (("Plain Name" NIL "plain" "example.com")) (("Plain Name" NIL "plain" '
            '"example.com")) (("Plain Name" NIL "plain" "example.com")) (("Name" NIL "a" '
            '"b.example")(NIL NIL "x" "y.example")) ((NIL NIL "john doe" "example.com")("Joe '
            'Q. Public" NIL "jq" "example.com")) (("=?utf-8?q?caf=C3=A9?= Quoted '
            '=?utf-8?q?caf=C3=A9?=" NIL "qc" "example.com")) "<a@b> <c@d> (comment)" '
            '"no-brackets@x")'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1)',
    ),
    "crlf_only_body": (
        '(NIL "p" NIL NIL NIL NIL NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 1)',
    ),
    "ct_garbage": (
        '(NIL "b" NIL NIL NIL NIL NIL NIL NIL NIL)',
        # Dovecot: ("garbage" "" NIL NIL NIL "7bit" 7 ...); RFC 2045 §5.2: text/plain
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1)',
    ),
    "ct_html_name": (
        '(NIL "c" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '("text" "html" ("name" "x.html" "charset" "us-ascii") NIL NIL "7bit" 5 1 NIL NIL '
            'NIL NIL)'
        ),
        '("text" "html" ("name" "x.html" "charset" "us-ascii") NIL NIL "7bit" 5 1)',
    ),
    "ct_nosub": (
        '(NIL "a" NIL NIL NIL NIL NIL NIL NIL NIL)',
        # Dovecot: ("text" "" ...); RFC 2045 §5.2: text/plain
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1)',
    ),
    "ct_param_noval": (
        '(NIL "d" NIL NIL NIL NIL NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1)',
    ),
    "digest": (
        (
            '(NIL "Digest, Vol 1" ((NIL NIL "digest" "lists.example.com")) ((NIL NIL "digest" '
            '"lists.example.com")) ((NIL NIL "digest" "lists.example.com")) NIL NIL NIL NIL '
            'NIL)'
        ),
        (
            '(("message" "rfc822" NIL NIL NIL "7bit" 54 (NIL "first" ((NIL NIL "one" '
            '"example.com")) ((NIL NIL "one" "example.com")) ((NIL NIL "one" "example.com")) '
            'NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0 '
            'NIL NIL NIL NIL) 3 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 56 (NIL '
            '"second" ((NIL NIL "two" "example.com")) ((NIL NIL "two" "example.com")) ((NIL '
            'NIL "two" "example.com")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" '
            '"us-ascii") NIL NIL "7bit" 14 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)("text" '
            '"plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0 NIL NIL NIL NIL) "digest" '
            '("boundary" "dig") NIL NIL NIL)'
        ),
        (
            '(("message" "rfc822" NIL NIL NIL "7bit" 54 (NIL "first" ((NIL NIL "one" '
            '"example.com")) ((NIL NIL "one" "example.com")) ((NIL NIL "one" "example.com")) '
            'NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0) '
            '3)("message" "rfc822" NIL NIL NIL "7bit" 56 (NIL "second" ((NIL NIL "two" '
            '"example.com")) ((NIL NIL "two" "example.com")) ((NIL NIL "two" "example.com")) '
            'NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 0) '
            '3)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0) "digest")'
        ),
    ),
    "dup_ct": (
        '(NIL "o" NIL NIL NIL NIL NIL NIL NIL NIL)',
        '("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "dup_fields": (
        (
            '("d2" "v" NIL ((NIL NIL "s1" "x.example")(NIL NIL "s2" "x.example")) NIL NIL NIL '
            'NIL "<r2@x>" "<second@x>")'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "eight_bit": (
        (
            '("Sat, 8 Mar 2025 18:00:00 +0100" "Café con leche ☕" (("José Núñez" NIL "jose" '
            '"example.es")) (("José Núñez" NIL "jose" "example.es")) (("José Núñez" NIL "jose" '
            '"example.es")) ((NIL NIL "bob" "hayate.test")) NIL NIL NIL "<8bit-1@example.es>")'
        ),
        '("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 48 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 48 1)',
    ),
    "empty_body": (
        (
            '(NIL "empty" ((NIL NIL "a" "b.example")) ((NIL NIL "a" "b.example")) ((NIL NIL '
            '"a" "b.example")) NIL NIL NIL NIL NIL)'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)',
    ),
    "fold1": (
        (
            '("one\ttwo" "a b" NIL NIL NIL ((NIL NIL "x" "y.example")) NIL NIL "<a@b>  '
            '\t<c@d>" "<tab@x>")'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "fold2": (
        (
            '(NIL "a b" (("Folded Name" NIL "f" "x.example")) (("Folded Name" NIL "f" '
            '"x.example")) (("Folded Name" NIL "f" "x.example")) NIL NIL NIL NIL NIL)'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "forwarded": (
        (
            '("Thu, 6 Mar 2025 07:00:00 +0900" "Fwd: Quarterly report" ((NIL NIL "bob" '
            '"hayate.test")) ((NIL NIL "bob" "hayate.test")) ((NIL NIL "bob" "hayate.test")) '
            '((NIL NIL "carol" "hayate.test")) NIL NIL NIL "<fwd-1@hayate.test>")'
        ),
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 18 1 NIL NIL NIL NIL)'
            '("message" "rfc822" NIL NIL NIL "7bit" 418 ("Wed, 5 Mar 2025 12:30:00 +0000" '
            '"Quarterly report" (("Reports" NIL "reports" "example.org")) (("Reports" NIL '
            '"reports" "example.org")) (("Reports" NIL "reports" "example.org")) ((NIL NIL '
            '"bob" "hayate.test")) NIL NIL NIL "<inner-1@example.org>") (("text" "plain" '
            '("charset" "utf-8") NIL NIL "8bit" 24 0 NIL NIL NIL NIL)("text" "html" ("charset" '
            '"utf-8") NIL NIL "7bit" 21 0 NIL NIL NIL NIL) "alternative" ("boundary" "in") NIL '
            'NIL NIL) 18 NIL ("attachment" ("filename" "report.eml")) NIL NIL) "mixed" '
            '("boundary" "fwd") NIL NIL NIL)'
        ),
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 18 1)("message" "rfc822" '
            'NIL NIL NIL "7bit" 418 ("Wed, 5 Mar 2025 12:30:00 +0000" "Quarterly report" '
            '(("Reports" NIL "reports" "example.org")) (("Reports" NIL "reports" "example.org")'
            ') (("Reports" NIL "reports" "example.org")) ((NIL NIL "bob" "hayate.test")) NIL '
            'NIL NIL "<inner-1@example.org>") (("text" "plain" ("charset" "utf-8") NIL NIL '
            '"8bit" 24 0)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 21 0) "alternative")'
            ' 18) "mixed")'
        ),
    ),
    "global": (
        '(NIL "w" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '(("message" "global" NIL NIL NIL "7bit" 41 NIL NIL NIL NIL)("message" '
            '"delivery-status" NIL NIL NIL "7bit" 21 NIL NIL NIL NIL) "mixed" ("boundary" "g") '
            'NIL NIL NIL)'
        ),
        (
            '(("message" "global" NIL NIL NIL "7bit" 41)("message" "delivery-status" NIL NIL '
            'NIL "7bit" 21) "mixed")'
        ),
    ),
    "group_from": (
        (
            '(NIL "l" ((NIL NIL "Grp" NIL)(NIL NIL "a" "x.example")(NIL NIL "b" "x.example")'
            '(NIL NIL NIL NIL)) ((NIL NIL "Grp" NIL)(NIL NIL "a" "x.example")(NIL NIL "b" '
            '"x.example")(NIL NIL NIL NIL)) ((NIL NIL "Grp" NIL)(NIL NIL "a" "x.example")(NIL '
            'NIL "b" "x.example")(NIL NIL NIL NIL)) ((NIL NIL "MISSING_MAILBOX" '
            '"MISSING_DOMAIN")(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")(NIL NIL "a" '
            '"b.example")(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) NIL NIL NIL NIL)'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "headers_only": (
        (
            '(NIL "only headers" ((NIL NIL "a" "b.example")) ((NIL NIL "a" "b.example")) ((NIL '
            'NIL "a" "b.example")) NIL NIL NIL NIL NIL)'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)',
    ),
    "japanese": (
        (
            '("Fri, 7 Mar 2025 10:00:00 +0900" "=?ISO-2022-JP?B?GyRCRnxLXDhsJE43b0w+GyhC?=" '
            '(("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=" NIL "nihon" "example.jp")) '
            '(("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=" NIL "nihon" "example.jp")) '
            '(("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=" NIL "nihon" "example.jp")) '
            '(("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=" NIL "taro" "hayate.test")) NIL NIL NIL '
            '"<jp-1@example.jp>")'
        ),
        '("text" "plain" ("charset" "ISO-2022-JP") NIL NIL "7bit" 26 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "ISO-2022-JP") NIL NIL "7bit" 26 1)',
    ),
    "latin1_body": (
        (
            '(NIL "=?iso-8859-1?q?Gr=FC=DFe?=" (("J\udcfcrgen" NIL "juergen" "example.de")) '
            '(("J\udcfcrgen" NIL "juergen" "example.de")) (("J\udcfcrgen" NIL "juergen" '
            '"example.de")) ((NIL NIL "bob" "hayate.test")) NIL NIL NIL NIL)'
        ),
        '("text" "plain" ("charset" "iso-8859-1") NIL NIL "8bit" 14 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "iso-8859-1") NIL NIL "8bit" 14 1)',
    ),
    "lf_only": (
        (
            '(NIL "bare LF" ((NIL NIL "lf" "example.com")) ((NIL NIL "lf" "example.com")) '
            '((NIL NIL "lf" "example.com")) NIL NIL NIL NIL NIL)'
        ),
        # Dovecot counts a CR per bare LF (20); Hayate counts the bytes as stored
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 18 2 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 18 2)',
    ),
    "mbox_from": (
        '(NIL "j" NIL NIL NIL NIL NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1)',
    ),
    "minimal_no_trailing_crlf": (
        '(NIL "tiny" NIL NIL NIL NIL NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 0 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 0)',
    ),
    "missing_boundary": (
        (
            '(NIL "multipart without a boundary" ((NIL NIL "broken" "example.com")) ((NIL NIL '
            '"broken" "example.com")) ((NIL NIL "broken" "example.com")) NIL NIL NIL NIL NIL)'
        ),
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) '
            '"mixed" NIL NIL NIL NIL)'
        ),
        '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")',
    ),
    "mixed_nested": (
        (
            '("Wed, 5 Mar 2025 12:30:00 +0000" "Quarterly report" (("Reports" NIL "reports" '
            '"example.org")) (("Reports" NIL "reports" "example.org")) (("Reports" NIL '
            '"reports" "example.org")) ((NIL NIL "Undisclosed recipients" NIL)(NIL NIL NIL NIL)'
            ') NIL NIL NIL "<mixed-1@example.org>")'
        ),
        (
            '((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 24 0 NIL NIL NIL NIL)'
            '("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 38 0 NIL NIL NIL NIL) '
            '"alternative" ("boundary" "inner") NIL NIL NIL)("application" "pdf" ("name" '
            '"report.pdf") "<report@example.org>" "The report" "base64" 106 NIL ("attachment" '
            '("size" "81" "filename*" "utf-8\'\'%E5%A0%B1%E5%91%8A%E6%9B%B8.pdf")) ("en" "ja") '
            '"http://example.org/report.pdf")("image" "png" ("name" '
            '"=?utf-8?q?d=C3=A9j=C3=A0.png?=") NIL NIL "base64" 12 NIL ("inline" ("filename" '
            '"déjà.png")) NIL NIL) "mixed" ("boundary" "outer") NIL ("en") NIL)'
        ),
        (
            '((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 24 0)("text" "html" '
            '("charset" "us-ascii") NIL NIL "7bit" 38 0) "alternative")("application" "pdf" '
            '("name" "report.pdf") "<report@example.org>" "The report" "base64" 106)("image" '
            '"png" ("name" "=?utf-8?q?d=C3=A9j=C3=A0.png?=") NIL NIL "base64" 12) "mixed")'
        ),
    ),
    "mp_noparts": (
        '(NIL "e" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) '
            '"mixed" ("boundary" "zz") NIL NIL NIL)'
        ),
        '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")',
    ),
    "multi_from": (
        (
            '("Mon, 1 Jan 2024 00:00:00 +0000   " "two" ((NIL NIL "first" "example.com")(NIL '
            'NIL "second" "example.com")) ((NIL NIL "first" "example.com")(NIL NIL "second" '
            '"example.com")) ((NIL NIL "first" "example.com")(NIL NIL "second" "example.com")) '
            'NIL NIL NIL NIL NIL)'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "nested_rfc822": (
        (
            '(NIL "outer" ((NIL NIL "outer" "example.com")) ((NIL NIL "outer" "example.com")) '
            '((NIL NIL "outer" "example.com")) NIL NIL NIL NIL NIL)'
        ),
        (
            '(("message" "rfc822" NIL NIL NIL "7bit" 131 (NIL "middle" ((NIL NIL "middle" '
            '"example.com")) ((NIL NIL "middle" "example.com")) ((NIL NIL "middle" '
            '"example.com")) NIL NIL NIL NIL NIL) ("message" "rfc822" NIL NIL NIL "7bit" 56 '
            '(NIL "deepest" ((NIL NIL "deepest" "example.com")) ((NIL NIL "deepest" '
            '"example.com")) ((NIL NIL "deepest" "example.com")) NIL NIL NIL NIL NIL) ("text" '
            '"plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0 NIL NIL NIL NIL) 3 NIL NIL NIL '
            'NIL) 7 NIL NIL NIL NIL) "mixed" ("boundary" "o") NIL NIL NIL)'
        ),
        (
            '(("message" "rfc822" NIL NIL NIL "7bit" 131 (NIL "middle" ((NIL NIL "middle" '
            '"example.com")) ((NIL NIL "middle" "example.com")) ((NIL NIL "middle" '
            '"example.com")) NIL NIL NIL NIL NIL) ("message" "rfc822" NIL NIL NIL "7bit" 56 '
            '(NIL "deepest" ((NIL NIL "deepest" "example.com")) ((NIL NIL "deepest" '
            '"example.com")) ((NIL NIL "deepest" "example.com")) NIL NIL NIL NIL NIL) ("text" '
            '"plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0) 3) 7) "mixed")'
        ),
    ),
    "padding_boundary": (
        '(NIL "g" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 0 NIL NIL NIL NIL)'
            '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) '
            '"mixed" ("boundary" "pp") NIL NIL NIL)'
        ),
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 0)("text" "plain" '
            '("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'
        ),
    ),
    "params": (
        (
            '(NIL "parameters" ((NIL NIL "params" "example.com")) ((NIL NIL "params" '
            '"example.com")) ((NIL NIL "params" "example.com")) NIL NIL NIL NIL NIL)'
        ),
        (
            '("TEXT" "X-Custom" ("Charset" "ISO-8859-1" "name" "a \\"quoted\\" name" "EMPTY" '
            '"" "title*" "us-ascii\'en\'This%20is%20%2A%2A%2Afun%2A%2A%2A") NIL NIL '
            '"Quoted-Printable" 8 1 NIL ("ATTACHMENT" ("Filename" "x.txt")) NIL NIL)'
        ),
        (
            '("TEXT" "X-Custom" ("Charset" "ISO-8859-1" "name" "a \\"quoted\\" name" "EMPTY" '
            '"" "title*" "us-ascii\'en\'This%20is%20%2A%2A%2Afun%2A%2A%2A") NIL NIL '
            '"Quoted-Printable" 8 1)'
        ),
    ),
    "params_order": (
        '(NIL "n" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '("text" "plain" ("format" "flowed" "delsp" "yes" "charset" "us-ascii") NIL NIL '
            '"7bit" 3 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "a.txt" '
            '"creation-date" "x")) ("de") "a.txt")'
        ),
        (
            '("text" "plain" ("format" "flowed" "delsp" "yes" "charset" "us-ascii") NIL NIL '
            '"7bit" 3 1)'
        ),
    ),
    "part_no_blank": (
        '(NIL "k" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '(("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)("text" '
            '"plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" '
            '("boundary" "n") NIL NIL NIL)'
        ),
        (
            '(("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 0 0)("text" "plain" '
            '("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'
        ),
    ),
    "prefix_boundaries": (
        '(NIL "i" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 0 NIL NIL NIL NIL)'
            '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 0 NIL NIL NIL NIL) '
            '"alternative" ("boundary" "ab") NIL NIL NIL)("text" "plain" ("charset" "us-ascii")'
            ' NIL NIL "7bit" 6 0 NIL NIL NIL NIL) "mixed" ("boundary" "a") NIL NIL NIL)'
        ),
        (
            '((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 0)("text" "plain" '
            '("charset" "us-ascii") NIL NIL "7bit" 6 0) "alternative")("text" "plain" '
            '("charset" "us-ascii") NIL NIL "7bit" 6 0) "mixed")'
        ),
    ),
    "rfc2231_cont": (
        '(NIL "f" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '("application" "octet-stream" ("name" "longname.bin" "x*" "utf-8\'\'%C3%A9b c" '
            '"y*1" "skip" "z*0" "z0" "z*2" "z2") NIL NIL "7bit" 6 NIL ("inline" NIL) NIL NIL)'
        ),
        (
            '("application" "octet-stream" ("name" "longname.bin" "x*" "utf-8\'\'%C3%A9b c" '
            '"y*1" "skip" "z*0" "z0" "z*2" "z2") NIL NIL "7bit" 6)'
        ),
    ),
    "semicolon_ct": (
        '(NIL "r" NIL NIL NIL NIL NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "simple": (
        (
            '("Mon, 3 Mar 2025 09:59:58 +0100" "Re: [team] Lunch on Friday?" (("Alice Example" '
            'NIL "alice" "example.com")) ((NIL NIL "list-bounces" "lists.example.com")) '
            '(("Replies, Inc." NIL "replies" "example.com")) ((NIL NIL "bob" "hayate.test")'
            '("Carol C." NIL "carol" "hayate.test")) (("Dave" NIL "dave" "hayate.test")) ((NIL '
            'NIL "eve" "hayate.test")) "<parent@example.com>" "<simple-1@example.com>")'
        ),
        (
            '("text" "plain" ("charset" "utf-8" "format" "flowed") NIL NIL "7bit" 52 5 NIL NIL '
            'NIL NIL)'
        ),
        '("text" "plain" ("charset" "utf-8" "format" "flowed") NIL NIL "7bit" 52 5)',
    ),
    "tab_folded": (
        (
            '(NIL "t folded with tab" NIL NIL NIL ((NIL NIL "a" "b.example")(NIL NIL "c" '
            '"d.example")) NIL NIL NIL NIL)'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "top_rfc822": (
        (
            '(NIL "a message that is a message" ((NIL NIL "wrapper" "example.com")) ((NIL NIL '
            '"wrapper" "example.com")) ((NIL NIL "wrapper" "example.com")) NIL NIL NIL NIL NIL)'
        ),
        (
            '("message" "rfc822" NIL NIL NIL "7bit" 110 (NIL "inside" ((NIL NIL "inner" '
            '"example.com")) ((NIL NIL "inner" "example.com")) ((NIL NIL "inner" "example.com")'
            ') NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 22 2 '
            'NIL NIL NIL NIL) 6 NIL NIL NIL NIL)'
        ),
        (
            '("message" "rfc822" NIL NIL NIL "7bit" 110 (NIL "inside" ((NIL NIL "inner" '
            '"example.com")) ((NIL NIL "inner" "example.com")) ((NIL NIL "inner" "example.com")'
            ') NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 22 2)'
            ' 6)'
        ),
    ),
    "unterminated": (
        (
            '(NIL "unterminated multipart" ((NIL NIL "broken" "example.com")) ((NIL NIL '
            '"broken" "example.com")) ((NIL NIL "broken" "example.com")) NIL NIL NIL NIL NIL)'
        ),
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
            '("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 34 1 NIL NIL NIL NIL) '
            '"mixed" ("boundary" "b1") NIL NIL NIL)'
        ),
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0)("text" "html" '
            '("charset" "us-ascii") NIL NIL "7bit" 34 1) "mixed")'
        ),
    ),
    "uppercase_mp": (
        '(NIL "s" NIL NIL NIL NIL NIL NIL NIL NIL)',
        (
            '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL) '
            '"Mixed" ("BOUNDARY" "UP") NIL NIL NIL)'
        ),
        '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0) "Mixed")',
    ),
    "ws1": (
        (
            '(NIL "a b c" (("x y z" NIL "f" "x.example")) (("x y z" NIL "f" "x.example")) (("x '
            'y z" NIL "f" "x.example")) NIL NIL NIL NIL NIL)'
        ),
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
    "ws2": (
        '("a\tb" "a b c d" NIL NIL NIL NIL NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
        '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
    ),
}


def test_every_corpus_message_has_an_expectation() -> None:
    assert sorted(DOVECOT) == sorted(CORPUS)


@pytest.mark.parametrize("name", sorted(DOVECOT))
def test_envelope(name: str) -> None:
    mine = mime.envelope(mime.parse(CORPUS[name]))
    assert same(mine, imap(DOVECOT[name][0])), show(mine)


@pytest.mark.parametrize("name", sorted(DOVECOT))
def test_bodystructure(name: str) -> None:
    mine = mime.bodystructure(mime.parse(CORPUS[name]), extended=True)
    assert same(mine, imap(DOVECOT[name][1])), show(mine)


@pytest.mark.parametrize("name", sorted(DOVECOT))
def test_body(name: str) -> None:
    mine = mime.bodystructure(mime.parse(CORPUS[name]), extended=False)
    assert same(mine, imap(DOVECOT[name][2])), show(mine)


def test_single_part_bodystructure_encodes_exactly_like_dovecot() -> None:
    tree = mime.bodystructure(mime.parse(SIMPLE), extended=True)
    assert response.encode(tree) == (
        b'("text" "plain" ("charset" "utf-8" "format" "flowed") NIL NIL "7bit" 52 5 NIL NIL'
        b" NIL NIL)"
    )


def test_eight_bit_header_values_go_out_as_the_stored_bytes() -> None:
    utf8 = mime.envelope(mime.parse(EIGHT_BIT))
    assert isinstance(utf8, list)
    assert utf8[1] == "Café con leche ☕"
    assert b"{19}\r\nCaf\xc3\xa9 con leche \xe2\x98\x95" in response.encode(utf8)
    latin1 = mime.envelope(mime.parse(LATIN1_BODY))
    assert isinstance(latin1, list)
    assert response.encode(latin1[2]) == b'(({6}\r\nJ\xfcrgen NIL "juergen" "example.de"))'


def test_multipart_and_address_lists_encode_exactly_like_dovecot() -> None:
    msg = mime.parse(CORPUS["mixed_nested"])
    wire = response.encode(mime.bodystructure(msg, extended=False))
    assert wire == "".join(DOVECOT["mixed_nested"][2]).encode()
    envelope = response.encode(mime.envelope(mime.parse(CORPUS["simple"])))
    assert b'((NIL NIL "bob" "hayate.test")("Carol C." NIL "carol" "hayate.test"))' in envelope
