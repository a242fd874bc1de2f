"""FETCH rendering: every item against a small real message, exact bytes."""

from __future__ import annotations

import pytest

from hayate.imap import fetch
from hayate.imap.commands import Fetch, FetchItem
from hayate.imap.parser import CommandReader
from hayate.mailbox import mime
from hayate.mailbox.model import MessageInfo

MSG = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"Cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello there.\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAw==\r\n"
    b"--XX--\r\n"
)
HEADER_END = MSG.index(b"\r\n\r\n") + 4
INFO = MessageInfo(uid=7, modseq=12, internaldate=837570205.0, size=len(MSG),
                   flags=frozenset({"$Work", "\\Seen", "\\Answered"}))


def items(text: str) -> tuple[FetchItem, ...]:
    reader = CommandReader()
    reader.feed(b"a FETCH 1 " + text.encode() + b"\r\n")
    command = reader.next()
    assert isinstance(command, Fetch), command
    return command.items


def render(text: str, *, modseq: bool = False, recent: bool = False, seq: int = 3) -> bytes:
    wanted = items(text)
    body = MSG if fetch.needs_body(wanted) else None
    return fetch.render(seq, INFO, wanted, body, modseq=modseq, recent=recent)


def test_metadata_items() -> None:
    assert render("(UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)") == (
        b'* 3 FETCH (UID 7 FLAGS (\\Answered \\Seen $Work) INTERNALDATE '
        b'"17-Jul-1996 02:23:25 +0000" RFC822.SIZE %d MODSEQ (12))\r\n' % len(MSG))


def test_fast_macro_with_recent_and_modseq_added() -> None:
    assert render("FAST", modseq=True, recent=True) == (
        b'* 3 FETCH (FLAGS (\\Answered \\Seen $Work \\Recent) INTERNALDATE '
        b'"17-Jul-1996 02:23:25 +0000" RFC822.SIZE %d MODSEQ (12))\r\n' % len(MSG))
    # Asked for explicitly, MODSEQ is not repeated.
    assert render("(MODSEQ)", modseq=True) == b"* 3 FETCH (MODSEQ (12))\r\n"


def test_whole_message_forms() -> None:
    literal = b"{%d}\r\n" % len(MSG) + MSG
    assert render("BODY[]") == b"* 3 FETCH (BODY[] " + literal + b")\r\n"
    assert render("BODY.PEEK[]") == b"* 3 FETCH (BODY[] " + literal + b")\r\n"
    assert render("RFC822") == b"* 3 FETCH (RFC822 " + literal + b")\r\n"
    assert render("(UID BODY.PEEK[]<0.4>)") == b"* 3 FETCH (UID 7 BODY[]<0> {4}\r\nDate)\r\n"
    assert render("BODY[]<11.5>") == b"* 3 FETCH (BODY[]<11> {5}\r\n17 Ju)\r\n"
    assert render("BODY[]<99999.5>") == b"* 3 FETCH (BODY[]<99999> {0}\r\n)\r\n"
    assert render("BODY[]<0.0>") == b"* 3 FETCH (BODY[]<0> {0}\r\n)\r\n"
    start = len(MSG) - 9
    assert render(f"BODY[]<{start}>") == (
        b"* 3 FETCH (BODY[]<%d> {9}\r\n" % start + MSG[start:] + b")\r\n")


def test_header_and_text_sections() -> None:
    header, text = MSG[:HEADER_END], MSG[HEADER_END:]
    assert render("BODY.PEEK[HEADER]") == (
        b"* 3 FETCH (BODY[HEADER] {%d}\r\n" % len(header) + header + b")\r\n")
    assert render("RFC822.HEADER") == (
        b"* 3 FETCH (RFC822.HEADER {%d}\r\n" % len(header) + header + b")\r\n")
    assert render("BODY[TEXT]") == b"* 3 FETCH (BODY[TEXT] {%d}\r\n" % len(text) + text + b")\r\n"
    assert render("RFC822.TEXT") == (
        b"* 3 FETCH (RFC822.TEXT {%d}\r\n" % len(text) + text + b")\r\n")
    fields = b"From: Terry Gray <gray@cac.washington.edu>\r\nMessage-Id: " \
             b"<B27397-0100000@cac.washington.edu>\r\n\r\n"
    assert render("BODY.PEEK[HEADER.FIELDS (message-id FROM X-None)]") == (
        b"* 3 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID FROM X-NONE)] {%d}\r\n" % len(fields)
        + fields + b")\r\n")
    rest = render("BODY.PEEK[HEADER.FIELDS.NOT (Date From Subject To Cc Message-Id)]")
    expected = b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    assert rest == (b"* 3 FETCH (BODY[HEADER.FIELDS.NOT (DATE FROM SUBJECT TO CC MESSAGE-ID)] "
                    b"{%d}\r\n" % len(expected) + expected + b")\r\n")


def test_part_sections() -> None:
    assert render("BODY[1]") == b"* 3 FETCH (BODY[1] {12}\r\nHello there.)\r\n"
    assert render("BODY.PEEK[1]<6.100>") == b"* 3 FETCH (BODY[1]<6> {6}\r\nthere.)\r\n"
    mime_header = (b"Content-Type: application/octet-stream\r\n"
                   b"Content-Transfer-Encoding: base64\r\n\r\n")
    assert render("BODY[2.MIME]") == (
        b"* 3 FETCH (BODY[2.MIME] {%d}\r\n" % len(mime_header) + mime_header + b")\r\n")
    assert render("BODY[2]") == b"* 3 FETCH (BODY[2] {8}\r\nAAECAw==)\r\n"
    assert render("BODY[9]") == b"* 3 FETCH (BODY[9] {0}\r\n)\r\n"
    assert render("BODY[1.2.3]") == b"* 3 FETCH (BODY[1.2.3] {0}\r\n)\r\n"
    assert render("BODY[2.HEADER]") == b"* 3 FETCH (BODY[2.HEADER] {0}\r\n)\r\n"


def test_binary_items() -> None:
    assert render("BINARY[2]") == b"* 3 FETCH (BINARY[2] ~{4}\r\n\x00\x01\x02\x03)\r\n"
    assert render("BINARY.PEEK[2]<1.2>") == b"* 3 FETCH (BINARY[2]<1> {2}\r\n\x01\x02)\r\n"
    assert render("BINARY.SIZE[2]") == b"* 3 FETCH (BINARY.SIZE[2] 4)\r\n"
    assert render("BINARY[1]") == b"* 3 FETCH (BINARY[1] {12}\r\nHello there.)\r\n"
    assert render("BINARY.SIZE[]") == b"* 3 FETCH (BINARY.SIZE[] %d)\r\n" % len(MSG)
    assert render("BINARY[5]") == b"* 3 FETCH (BINARY[5] {0}\r\n)\r\n"


def test_envelope_and_structure_are_the_mime_trees_encoded() -> None:
    out = render("(ENVELOPE BODY BODYSTRUCTURE)")
    assert out.startswith(
        b'* 3 FETCH (ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700" '
        b'"IMAP4rev1 WG mtg summary and minutes" (("Terry Gray" NIL "gray" '
        b'"cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" '
        b'"cac.washington.edu")) ((NIL NIL "minutes" "CNRI.Reston.VA.US")'
        b'("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL '
        b'"<B27397-0100000@cac.washington.edu>") BODY (('
    )
    assert b' "mixed") BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") ' in out
    assert b'"mixed" ("boundary" "XX")' in out
    assert out.endswith(b")\r\n") and out.count(b"\r\n") == 1


def test_fetch_full_renders_every_macro_item_in_order() -> None:
    out = render("FULL")
    names = [b"FLAGS (", b"INTERNALDATE ", b"RFC822.SIZE ", b"ENVELOPE (", b"BODY ("]
    positions = [out.index(name) for name in names]
    assert positions == sorted(positions)


def test_body_fetches_do_not_parse_mime(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes) -> mime.MimeMessage:
        raise AssertionError("MIME parsed for a plain body fetch")

    monkeypatch.setattr(mime, "parse", refuse)
    for text in ("(UID BODY.PEEK[])", "BODY[]", "RFC822", "(FLAGS RFC822.SIZE UID)",
                 "BODY.PEEK[]<0.100>", "(INTERNALDATE MODSEQ)"):
        assert not fetch.needs_mime(items(text))
        assert render(text).startswith(b"* 3 FETCH (")
    with pytest.raises(AssertionError, match="MIME parsed"):
        render("ENVELOPE")


def test_needs_body_and_sets_seen() -> None:
    assert not fetch.needs_body(items("(UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)"))
    assert not fetch.needs_body(items("FAST"))
    for text in ("ENVELOPE", "BODY[]", "BODY", "BODYSTRUCTURE", "RFC822.HEADER", "BINARY[1]",
                 "BINARY.SIZE[1]", "ALL"):
        assert fetch.needs_body(items(text)), text
    assert fetch.sets_seen(items("BODY[]"))
    assert fetch.sets_seen(items("RFC822"))
    assert fetch.sets_seen(items("(FLAGS BINARY[1])"))
    assert not fetch.sets_seen(items("(BODY.PEEK[] RFC822.HEADER BINARY.PEEK[1] ENVELOPE)"))


def test_a_body_item_without_the_body_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="needs the message body"):
        fetch.render(1, INFO, items("BODY[]"), None, modseq=False)


def test_unknown_transfer_encoding_is_reported_for_binary() -> None:
    odd = MSG.replace(b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: x-odd")
    with pytest.raises(mime.UnknownEncoding):
        fetch.render(1, INFO, items("BINARY[2]"), odd, modseq=False)


def test_render_into_appends_the_same_bytes_without_copying_the_body() -> None:
    out: list[bytes] = [b"before"]
    fetch.render_into(out, 3, INFO, items("(UID BODY.PEEK[])"), MSG, modseq=False)
    assert b"".join(out[1:]) == render("(UID BODY.PEEK[])")
    assert any(piece is MSG for piece in out)
