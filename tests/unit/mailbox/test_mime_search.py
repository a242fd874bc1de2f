"""SEARCH text matching (decoded headers and bodies) and the RFC 5256 SORT keys."""

from __future__ import annotations

import pytest
from tests.unit.mailbox.test_mime_corpus import (
    ADDRESSES,
    ALTERNATIVE,
    CORPUS,
    EIGHT_BIT,
    FORWARDED,
    JAPANESE,
    LATIN1_BODY,
    MIXED_NESTED,
    SIMPLE,
    crlf,
)

from hayate.mailbox import mime


def header(data: bytes, field: str, needle: str) -> bool:
    return mime.header_matches(mime.parse(data), field, needle)


def body(data: bytes, needle: str) -> bool:
    return mime.text_matches(data, mime.parse(data), needle, headers=False)


def text(data: bytes, needle: str) -> bool:
    return mime.text_matches(data, mime.parse(data), needle, headers=True)


def test_header_search_is_a_case_insensitive_substring_of_the_unfolded_value() -> None:
    assert header(SIMPLE, "Subject", "lunch ON friday")
    assert header(SIMPLE, "SUBJECT", "[team]")
    assert header(SIMPLE, "from", "ALICE@example")
    assert header(SIMPLE, "to", "carol c.")
    assert header(SIMPLE, "message-id", "simple-1")
    assert not header(SIMPLE, "subject", "dinner")
    assert not header(SIMPLE, "x-missing", "x")


def test_empty_needle_matches_messages_that_have_the_field() -> None:
    assert header(SIMPLE, "In-Reply-To", "")
    assert not header(ALTERNATIVE, "In-Reply-To", "")
    assert header(CORPUS["comments"], "subject", "")  # present but empty


def test_encoded_words_are_decoded_before_matching() -> None:
    assert header(ALTERNATIVE, "subject", "Grüße aus Köln")
    assert header(ALTERNATIVE, "subject", "GRÜSSE")  # full case folding: ß is ss
    assert header(ALTERNATIVE, "from", "grüße aus")
    assert header(JAPANESE, "subject", "日本語の件名")
    assert header(JAPANESE, "to", "日本語")
    assert header(LATIN1_BODY, "subject", "grüße")
    assert header(ADDRESSES, "bcc", "Jürgen")
    assert not header(ALTERNATIVE, "subject", "=?utf-8?q?")


def test_raw_eight_bit_headers_match_as_utf8_or_latin1() -> None:
    assert header(EIGHT_BIT, "subject", "café con leche ☕")
    assert header(EIGHT_BIT, "from", "josé núñez")
    assert header(LATIN1_BODY, "from", "jürgen")


def test_encoded_words_split_inside_a_character_are_joined_first() -> None:
    # "日本" in UTF-8 is e6 97 a5 e6 9c ac: cut after the fourth byte, across two words
    data = crlf("Subject: =?UTF-8?B?5pel5g==?= =?UTF-8?B?nKw=?= and more\n\nx\n")
    assert header(data, "subject", "日本 and more")


def test_broken_encoded_words_stay_as_they_are() -> None:
    data = crlf("Subject: =?x-no-such-charset?q?abc?= =?utf-8?b?###?= plain\n\nx\n")
    assert header(data, "subject", "=?x-no-such-charset?q?abc?=")
    assert header(data, "subject", "plain")


def test_body_search_decodes_transfer_encodings_and_charsets() -> None:
    assert body(ALTERNATIVE, "schöne grüße aus köln, mit")  # quoted-printable
    assert body(ALTERNATIVE, "langen Zeile, die umgebrochen")  # across a soft line break
    assert body(ALTERNATIVE, "<p>schöne")  # the base64 html part
    assert body(JAPANESE, "こんにちは")  # ISO-2022-JP
    assert body(LATIN1_BODY, "SCHÖNE GRÜSSE")  # iso-8859-1, 8bit
    assert body(EIGHT_BIT, "mañana")
    assert body(CORPUS["params"], "café")  # qp in iso-8859-1


def test_body_search_skips_headers_preamble_epilogue_and_non_text_parts() -> None:
    assert not body(SIMPLE, "Alice Example")
    assert not body(ALTERNATIVE, "multi-part message in MIME format")
    assert not body(ALTERNATIVE, "epilogue")
    assert not body(MIXED_NESTED, "PDF-1.4")  # application/pdf
    assert not body(MIXED_NESTED, "JVBERi0x")  # nor its encoded form
    assert body(MIXED_NESTED, "attached report")


def test_a_forwarded_message_is_searched_with_its_header() -> None:
    assert body(FORWARDED, "Numbers are up — 12 %")
    assert body(FORWARDED, "reports@example.org")  # the inner From
    assert not body(FORWARDED, "carol@hayate.test")  # the outer To
    assert text(FORWARDED, "carol@hayate.test")
    assert text(FORWARDED, "forwarding THIS")


def test_text_search_covers_header_and_body() -> None:
    assert text(SIMPLE, "Alice Example")
    assert text(SIMPLE, "at noon")
    assert text(ALTERNATIVE, "Grüße aus Köln")  # decoded subject
    assert not text(SIMPLE, "not in there")
    assert text(SIMPLE, "")


# -- sort keys ---------------------------------------------------------------------------


def subject_key(subject: str) -> str:
    return mime.base_subject(mime.parse(crlf(f"Subject: {subject}\n\nx\n")))


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Lunch", "lunch"),
        ("Re: Lunch", "lunch"),
        ("RE: re:  Re:Lunch", "lunch"),
        ("Fwd: Fw: Lunch", "lunch"),
        ("Re: [team] Lunch", "lunch"),
        ("[team] Re: [other] Fwd: Lunch (fwd) (FWD)", "lunch"),
        ("[Fwd: [team] Re: Lunch]", "lunch"),
        ("Re: [team]", "[team]"),  # a blob alone is the subject
        ("[only a blob]", "[only a blob]"),
        ("Refund: Lunch", "refund: lunch"),
        ("Lunch\t  on   Friday  ", "lunch on friday"),
        ("=?utf-8?q?Re=3A_Gr=C3=BC=C3=9Fe?=", "grüsse"),
        ("   ", ""),
    ],
)
def test_base_subject(subject: str, base: str) -> None:
    assert subject_key(subject) == base


def test_base_subject_of_a_message_without_subject_is_empty() -> None:
    assert mime.base_subject(mime.parse(b"From: a@b.example\r\n\r\nx\r\n")) == ""


def test_sent_date_comes_from_the_date_header_in_utc() -> None:
    assert mime.sent_date(mime.parse(SIMPLE)) == 1740992398.0  # 09:59:58 +0100
    assert mime.sent_date(mime.parse(ALTERNATIVE)) == 1741093200.0  # 08:00 -0500
    no_zone = mime.parse(b"Date: Mon, 3 Mar 2025 09:59:58\r\n\r\n")
    assert mime.sent_date(no_zone) == 1740995998.0  # read as UTC
    assert mime.sent_date(mime.parse(ADDRESSES)) is None  # "not a date at all"
    assert mime.sent_date(mime.parse(b"Subject: x\r\n\r\n")) is None
    assert mime.sent_date(mime.parse(b"Date: Mon, 3 Mar 99999 09:59:58 +0000\r\n\r\n")) is None


def test_first_address_is_the_mailbox_of_the_first_real_address() -> None:
    assert mime.first_address(mime.parse(SIMPLE), "from") == "alice"
    assert mime.first_address(mime.parse(SIMPLE), "TO") == "bob"
    assert mime.first_address(mime.parse(SIMPLE), "cc") == "dave"
    assert mime.first_address(mime.parse(ADDRESSES), "reply-to") == "alpha"  # inside a group
    assert mime.first_address(mime.parse(ADDRESSES), "cc") == ""  # an empty group
    assert mime.first_address(mime.parse(ADDRESSES), "sender") == ""  # <>
    assert mime.first_address(mime.parse(MIXED_NESTED), "to") == ""
    assert mime.first_address(mime.parse(ALTERNATIVE), "cc") == ""
    shouting = mime.parse(b"From: BOB@Example.COM\r\n\r\n")
    assert mime.first_address(shouting, "from") == "bob"


def test_unknown_and_bogus_charsets_fall_back_to_utf8_then_latin1() -> None:
    for label in (b"x-no-such-charset", b"base64", b"rot13", b"utf-8\xff"):
        data = b"Content-Type: text/plain; charset=%s\r\n\r\n%s\r\n" % (
            label, "café crème".encode()
        )
        assert body(data, "CAFÉ CRÈME"), label
    latin1 = "Content-Type: text/plain; charset=utf-8\r\n\r\ncafé crème\r\n".encode("latin-1")
    assert body(latin1, "café crème")
