"""Every command form the reader knows, as byte transcripts → the parsed command."""

from __future__ import annotations

import datetime

import pytest

from hayate.imap.commands import (
    PARTIAL_TO_END,
    Append,
    Authenticate,
    Bad,
    Copy,
    Create,
    Delete,
    Enable,
    Fetch,
    FetchItem,
    GetQuota,
    GetQuotaRoot,
    Id,
    List,
    Login,
    NeedContinuation,
    No,
    Qresync,
    ReaderResult,
    Rename,
    Search,
    SearchKey,
    Section,
    Select,
    SequenceSet,
    SetQuota,
    Simple,
    Sort,
    Status,
    Store,
    Subscribe,
    UidExpunge,
)
from hayate.imap.parser import CommandReader


def results(data: bytes, *, max_line: int = 8192, max_literal: int = 1 << 20) -> list[
        ReaderResult]:
    reader = CommandReader(max_line, max_literal)
    reader.feed(data)
    out: list[ReaderResult] = []
    while (result := reader.next()) is not None:
        out.append(result)
    assert reader.buffered == 0
    return out


def one(data: bytes) -> ReaderResult:
    """The single command in ``data`` (continuation requests skipped)."""
    out = [r for r in results(data) if not isinstance(r, NeedContinuation)]
    assert len(out) == 1, out
    return out[0]


def seq(text: str) -> SequenceSet:
    return SequenceSet.parse(text)


@pytest.mark.parametrize(
    "name",
    ["CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "EXPUNGE", "UNSELECT",
     "IDLE", "NAMESPACE"],
)
def test_simple_commands_any_case(name: str) -> None:
    assert one(b"A001 " + name.encode() + b"\r\n") == Simple("A001", name)
    assert one(b"x " + name.lower().encode() + b"\n") == Simple("x", name)


def test_tags_may_hold_any_astring_char_but_plus() -> None:
    assert one(b"a.b-c]!#$&'~ NOOP\r\n") == Simple("a.b-c]!#$&'~", "NOOP")


def test_login_atoms_quoted_and_literals() -> None:
    assert one(b"a LOGIN bob secret\r\n") == Login("a", "bob", "secret")
    assert one(b'a LOGIN "bob@example.com" "se\\"c\\\\ret"\r\n') == Login(
        "a", "bob@example.com", 'se"c\\ret')
    data = b"a LOGIN {3}\r\nbob {6+}\r\npa ss\n\r\n"
    out = results(data)
    assert out == [NeedContinuation("a", 3), Login("a", "bob", "pa ss\n")]


def test_login_with_utf8_password_in_literal() -> None:
    pw = "pässwörd".encode()
    assert one(b"a LOGIN bob {%d+}\r\n%s\r\n" % (len(pw), pw)) == Login("a", "bob", "pässwörd")


def test_authenticate_with_and_without_initial_response() -> None:
    assert one(b"a AUTHENTICATE plain\r\n") == Authenticate("a", "PLAIN", None)
    assert one(b"a AUTHENTICATE PLAIN =\r\n") == Authenticate("a", "PLAIN", b"")
    assert one(b"a AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=\r\n") == Authenticate(
        "a", "PLAIN", b"\0bob\0secret")


def test_select_examine_and_their_parameters() -> None:
    assert one(b"a SELECT inbox\r\n") == Select("a", "INBOX")
    assert one(b"a EXAMINE Sent\r\n") == Select("a", "Sent", readonly=True)
    assert one(b"a SELECT INBOX (CONDSTORE)\r\n") == Select("a", "INBOX", condstore=True)
    assert one(b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n"
               ) == Select("a", "INBOX", qresync=Qresync(
                   67890007, 20050715194045000, seq("41,43:211,214:541")))
    assert one(
        b"a EXAMINE INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000 "
        b"15000,22500,27000)))\r\n"
    ) == Select("a", "INBOX", True, qresync=Qresync(
        67890007, 90060115194045000, seq("1:29997"),
        (seq("5000,7500,9000"), seq("15000,22500,27000"))))
    assert one(b"a SELECT INBOX (QRESYNC (1 2))\r\n") == Select(
        "a", "INBOX", qresync=Qresync(1, 2))


def test_mailbox_names_are_decoded_from_modified_utf7() -> None:
    assert one(b"a CREATE Entw&APw-rfe\r\n") == Create("a", "Entwürfe")
    assert one(b'a CREATE "&ZeVnLIqe-/a b"\r\n') == Create("a", "日本語/a b")
    assert one(b"a CREATE Tom&-Jerry\r\n") == Create("a", "Tom&Jerry")
    assert one(b"a DELETE inbox/Sub\r\n") == Delete("a", "INBOX/Sub")
    assert one(b"a CREATE Mine (USE (\\Drafts \\Sent))\r\n") == Create(
        "a", "Mine", ("\\Drafts", "\\Sent"))


def test_folder_commands() -> None:
    assert one(b"a DELETE Trash\r\n") == Delete("a", "Trash")
    assert one(b'a RENAME "Old box" New\r\n') == Rename("a", "Old box", "New")
    assert one(b"a SUBSCRIBE Sent\r\n") == Subscribe("a", "Sent", True)
    assert one(b"a UNSUBSCRIBE Sent\r\n") == Subscribe("a", "Sent", False)
    assert one(b"a STATUS INBOX (MESSAGES unseen UIDNEXT UIDVALIDITY RECENT HIGHESTMODSEQ "
               b"SIZE)\r\n") == Status("a", "INBOX", ("MESSAGES", "UNSEEN", "UIDNEXT",
                                                     "UIDVALIDITY", "RECENT", "HIGHESTMODSEQ",
                                                     "SIZE"))


def test_list_and_lsub_forms() -> None:
    assert one(b'a LIST "" *\r\n') == List("a", "", ("*",))
    assert one(b'a LIST "" %\r\n') == List("a", "", ("%",))
    assert one(b"a LIST ~/Mail/ %]\r\n") == List("a", "~/Mail/", ("%]",))
    assert one(b'a LSUB "" "*"\r\n') == List("a", "", ("*",), lsub=True)
    assert one(b'a LIST "" Entw&APw-r*\r\n') == List("a", "", ("Entwür*",))
    assert one(
        b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" Sent*) RETURN (CHILDREN '
        b"SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n"
    ) == List("a", "", ("INBOX", "Sent*"), frozenset({"SUBSCRIBED", "RECURSIVEMATCH"}),
              frozenset({"CHILDREN", "SPECIAL-USE", "STATUS"}), ("MESSAGES", "UNSEEN"),
              extended=True)
    assert one(b'a LIST "" % RETURN (SPECIAL-USE)\r\n') == List(
        "a", "", ("%",), returns=frozenset({"SPECIAL-USE"}), extended=True)
    assert one(b'a LIST () "" %\r\n') == List("a", "", ("%",), extended=True)


def test_append_with_flags_date_and_literals() -> None:
    msg = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
    assert results(b"a APPEND Drafts {%d}\r\n" % len(msg) + msg + b"\r\n") == [
        NeedContinuation("a", len(msg)), Append("a", "Drafts", (), None, msg)]
    cmd = one(b'a APPEND INBOX (\\Seen $Label) "07-Feb-1994 21:52:25 -0800" {%d+}\r\n'
              % len(msg) + msg + b"\r\n")
    tz = datetime.timezone(-datetime.timedelta(hours=8))
    assert cmd == Append("a", "INBOX", ("\\Seen", "$Label"),
                         datetime.datetime(1994, 2, 7, 21, 52, 25, tzinfo=tz), msg)
    cmd = one(b'a APPEND INBOX " 7-Feb-1994 01:02:03 +0530" ~{3+}\r\nab\0\r\n')
    assert isinstance(cmd, Append)
    assert cmd.message == b"ab\0"
    assert cmd.date == datetime.datetime(
        1994, 2, 7, 1, 2, 3, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    assert one(b"a APPEND INBOX () {0+}\r\n\r\n") == Append("a", "INBOX", (), None, b"")


WHOLE = Section()


def body(section: Section = WHOLE, *, peek: bool = False,
         partial: tuple[int, int] | None = None) -> FetchItem:
    return FetchItem("BODY[]", section, peek, partial)


UID, FLAGS = FetchItem("UID"), FetchItem("FLAGS")


def test_fetch_macros_expand() -> None:
    fast = one(b"a FETCH 1:* FAST\r\n")
    assert isinstance(fast, Fetch)
    assert [i.name for i in fast.items] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    full = one(b"a FETCH 1 full\r\n")
    assert isinstance(full, Fetch)
    assert [i.name for i in full.items] == [
        "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]
    every = one(b"a FETCH 2,4 ALL\r\n")
    assert isinstance(every, Fetch)
    assert [i.name for i in every.items] == [
        "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]
    assert every.sequence == SequenceSet(((2, 2), (4, 4)))


def test_fetch_every_simple_item() -> None:
    names = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
             "BODY", "RFC822", "RFC822.HEADER", "RFC822.TEXT", "MODSEQ"]
    cmd = one(b"a FETCH 1 (" + " ".join(n.lower() for n in names).encode() + b")\r\n")
    assert cmd == Fetch("a", False, seq("1"), tuple(FetchItem(n) for n in names))
    assert one(b"a FETCH 1 rfc822.size\r\n") == Fetch(
        "a", False, seq("1"), (FetchItem("RFC822.SIZE"),))


def test_fetch_body_sections_and_partials() -> None:
    cmd = one(
        b"a FETCH 1 (BODY[] BODY.PEEK[]<0.2048> BODY[HEADER] BODY[TEXT] BODY[1] "
        b"BODY[1.2.3] BODY[2.MIME] BODY[3.HEADER] BODY[3.1.TEXT] "
        b'BODY.PEEK[HEADER.FIELDS (From "Subject" {4}\r\nDATE)] '
        b"BODY[1.HEADER.FIELDS.NOT (Received)]<10.20>)\r\n"
    )
    assert isinstance(cmd, Fetch)
    assert cmd.items == (
        body(),
        body(peek=True, partial=(0, 2048)),
        body(Section((), "HEADER")),
        body(Section((), "TEXT")),
        body(Section((1,))),
        body(Section((1, 2, 3))),
        body(Section((2,), "MIME")),
        body(Section((3,), "HEADER")),
        body(Section((3, 1), "TEXT")),
        body(Section((), "HEADER.FIELDS", ("FROM", "SUBJECT", "DATE")), peek=True),
        body(Section((1,), "HEADER.FIELDS.NOT", ("RECEIVED",)), partial=(10, 20)),
    )
    assert [i.label() for i in cmd.items] == [
        "BODY[]", "BODY[]<0>", "BODY[HEADER]", "BODY[TEXT]", "BODY[1]", "BODY[1.2.3]",
        "BODY[2.MIME]", "BODY[3.HEADER]", "BODY[3.1.TEXT]",
        "BODY[HEADER.FIELDS (FROM SUBJECT DATE)]", "BODY[1.HEADER.FIELDS.NOT (RECEIVED)]<10>",
    ]
    assert [i.sets_seen for i in cmd.items][:2] == [True, False]


def test_dovecot_leniencies() -> None:
    """Partials Dovecot accepts; US-ASCII read as UTF-8; any SEARCH HEADER name."""
    cmd = one(b"a FETCH 1 (BODY[]<5> BODY.PEEK[TEXT]<0.0>)\r\n")
    assert isinstance(cmd, Fetch)
    assert [i.partial for i in cmd.items] == [(5, PARTIAL_TO_END), (0, 0)]
    assert [i.label() for i in cmd.items] == ["BODY[]<5>", "BODY[TEXT]<0>"]
    assert one(b'a SEARCH CHARSET US-ASCII SUBJECT "\xc3\xa9"\r\n') == Search(
        "a", False, "US-ASCII", key("SUBJECT", "é"))
    assert one(b'a SEARCH HEADER "a b" x\r\n') == Search(
        "a", False, None, key("HEADER", ("a b", "x")))


def test_fetch_binary_items() -> None:
    cmd = one(b"a FETCH 1 (BINARY[1] BINARY.PEEK[2.1]<0.10> BINARY.SIZE[1] BINARY[])\r\n")
    assert isinstance(cmd, Fetch)
    assert cmd.items == (
        FetchItem("BINARY", Section((1,))),
        FetchItem("BINARY", Section((2, 1)), True, (0, 10)),
        FetchItem("BINARY.SIZE", Section((1,))),
        FetchItem("BINARY", Section()),
    )
    assert [i.label() for i in cmd.items] == [
        "BINARY[1]", "BINARY[2.1]<0>", "BINARY.SIZE[1]", "BINARY[]"]


def test_uid_fetch_adds_uid_and_changedsince_adds_modseq() -> None:
    assert one(b"7 UID FETCH 4:9 (BODY.PEEK[])\r\n") == Fetch(
        "7", True, seq("4:9"), (UID, body(peek=True)))
    assert one(b"7 uid fetch 4 (UID FLAGS)\r\n") == Fetch("7", True, seq("4"), (UID, FLAGS))
    assert one(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n") == Fetch(
        "a", True, seq("1:*"), (UID, FLAGS, FetchItem("MODSEQ")), 12345, True)
    assert one(b"a FETCH 1:* FLAGS (CHANGEDSINCE 0)\r\n") == Fetch(
        "a", False, seq("1:*"), (FLAGS, FetchItem("MODSEQ")), 0, False)


def test_fetch_fast_path_matches_the_full_parser() -> None:
    reader = CommandReader(8192, 1 << 20)
    for tag in range(3):  # the second and third come from the item cache
        reader.feed(b"t%d UID FETCH %d:%d (UID RFC822.SIZE BODY.PEEK[])\r\n" % (tag, tag + 1,
                                                                                tag + 5))
        assert reader.next() == Fetch(f"t{tag}", True, seq(f"{tag + 1}:{tag + 5}"),
                                      (UID, FetchItem("RFC822.SIZE"), body(peek=True)))


def test_store_forms() -> None:
    assert one(b"a STORE 2:4 +FLAGS (\\Deleted)\r\n") == Store(
        "a", False, seq("2:4"), "add", False, ("\\Deleted",))
    assert one(b"a STORE 1 -flags.silent \\seen \\FLAGGED $Work\r\n") == Store(
        "a", False, seq("1"), "remove", True, ("\\Seen", "\\Flagged", "$Work"))
    assert one(b"a UID STORE 1:* FLAGS ()\r\n") == Store("a", True, seq("1:*"), "set",
                                                         False, ())
    assert one(b"a STORE 1 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Answered)\r\n") == Store(
        "a", False, seq("1"), "add", True, ("\\Answered",), 320162338)


def test_copy_move_expunge() -> None:
    assert one(b"a COPY 2:4 Archive\r\n") == Copy("a", False, seq("2:4"), "Archive")
    assert one(b"a UID COPY 5 Trash\r\n") == Copy("a", True, seq("5"), "Trash")
    assert one(b'a MOVE 1 "Junk"\r\n') == Copy("a", False, seq("1"), "Junk", True)
    assert one(b"a UID MOVE 1:* Archive/2024\r\n") == Copy(
        "a", True, seq("1:*"), "Archive/2024", True)
    assert one(b"a UID EXPUNGE 3000:3002\r\n") == UidExpunge("a", seq("3000:3002"))


def key(name: str, value: object = None, *children: SearchKey) -> SearchKey:
    return SearchKey(name, value, children)


def test_search_every_key() -> None:
    cmd = one(
        b"a SEARCH ALL ANSWERED BCC b BEFORE 1-Feb-1994 BODY x CC c DELETED DRAFT FLAGGED "
        b"FROM f HEADER X-Spam yes KEYWORD $Work LARGER 100 NEW NOT SEEN OLD "
        b'ON "15-Mar-2024" OR SEEN FLAGGED RECENT SEEN SENTBEFORE 1-Jan-2000 SENTON '
        b"2-Jan-2000 SENTSINCE 3-Jan-2000 SINCE 4-jan-2000 SMALLER 5 SUBJECT s TEXT t TO o "
        b"UID 1:5 UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD $Junk UNSEEN 2,4:* "
        b"OLDER 60 YOUNGER 30 MODSEQ 7\r\n"
    )
    assert isinstance(cmd, Search)
    assert cmd.charset is None and cmd.returns is None and not cmd.uid
    d = datetime.date
    assert cmd.key == key("AND", None, *[
        key("ALL"), key("ANSWERED"), key("BCC", "b"), key("BEFORE", d(1994, 2, 1)),
        key("BODY", "x"), key("CC", "c"), key("DELETED"), key("DRAFT"), key("FLAGGED"),
        key("FROM", "f"), key("HEADER", ("X-Spam", "yes")), key("KEYWORD", "$Work"),
        key("LARGER", 100), key("NEW"), key("NOT", None, key("SEEN")), key("OLD"),
        key("ON", d(2024, 3, 15)), key("OR", None, key("SEEN"), key("FLAGGED")),
        key("RECENT"), key("SEEN"), key("SENTBEFORE", d(2000, 1, 1)),
        key("SENTON", d(2000, 1, 2)), key("SENTSINCE", d(2000, 1, 3)),
        key("SINCE", d(2000, 1, 4)), key("SMALLER", 5), key("SUBJECT", "s"),
        key("TEXT", "t"), key("TO", "o"), key("UID", seq("1:5")), key("UNANSWERED"),
        key("UNDELETED"), key("UNDRAFT"), key("UNFLAGGED"), key("UNKEYWORD", "$Junk"),
        key("UNSEEN"), key("SEQ", seq("2,4:*")), key("OLDER", 60), key("YOUNGER", 30),
        key("MODSEQ", 7),
    ])


def test_search_groups_single_key_and_modseq_entry() -> None:
    assert one(b"a UID SEARCH (OR (FROM x TO y) NOT (SEEN))\r\n") == Search(
        "a", True, None, key("OR", None, key("AND", None, key("FROM", "x"), key("TO", "y")),
                             key("NOT", None, key("SEEN"))))
    assert one(b"a SEARCH UNSEEN\r\n") == Search("a", False, None, key("UNSEEN"))
    assert one(b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338\r\n') == Search(
        "a", False, None, key("MODSEQ", 620162338))


def test_search_charsets_decode_strings() -> None:
    subject = "Grüße".encode("iso-8859-1")
    cmd = one(b"a SEARCH CHARSET ISO-8859-1 SUBJECT {%d+}\r\n%s\r\n" % (len(subject), subject))
    assert cmd == Search("a", False, "ISO-8859-1", key("SUBJECT", "Grüße"))
    cmd = one(b'a SEARCH CHARSET utf-8 TEXT "\xe6\x97\xa5\xe6\x9c\xac"\r\n')
    assert cmd == Search("a", False, "UTF-8", key("TEXT", "日本"))
    assert one(b"a SEARCH CHARSET US-ASCII FROM bob\r\n") == Search(
        "a", False, "US-ASCII", key("FROM", "bob"))
    assert one(b'a SEARCH HEADER "Message-ID" "<x@y>"\r\n') == Search(
        "a", False, None, key("HEADER", ("Message-ID", "<x@y>")))


def test_unknown_charset_is_refused_with_badcharset() -> None:
    for name in (b"X-UNKNOWN", b"base64", b"zlib"):
        assert one(b"a SEARCH CHARSET " + name + b" ALL\r\n") == No(
            "a", f"unknown charset {name.decode().upper()}", "BADCHARSET (UTF-8 US-ASCII)")
    assert one(b"s SORT (DATE) KOI9-X ALL\r\n") == No(
        "s", "unknown charset KOI9-X", "BADCHARSET (UTF-8 US-ASCII)")


def test_esearch_return_options() -> None:
    assert one(b"a SEARCH RETURN (MIN MAX COUNT) UNSEEN\r\n") == Search(
        "a", False, None, key("UNSEEN"), ("MIN", "MAX", "COUNT"))
    assert one(b"a UID SEARCH RETURN () CHARSET UTF-8 ALL\r\n") == Search(
        "a", True, "UTF-8", key("ALL"), ("ALL",))
    assert one(b"a SEARCH RETURN (all) 1:*\r\n") == Search(
        "a", False, None, key("SEQ", seq("1:*")), ("ALL",))


def test_sort() -> None:
    assert one(b"a SORT (REVERSE ARRIVAL subject) UTF-8 SINCE 1-Feb-1994\r\n") == Sort(
        "a", False, (("ARRIVAL", True), ("SUBJECT", False)), "UTF-8",
        key("SINCE", datetime.date(1994, 2, 1)))
    assert one(b"a UID SORT (FROM TO CC DATE SIZE) US-ASCII ALL UNDELETED\r\n") == Sort(
        "a", True, tuple((k, False) for k in ("FROM", "TO", "CC", "DATE", "SIZE")),
        "US-ASCII", key("AND", None, key("ALL"), key("UNDELETED")))


def test_enable_id_namespace_quota() -> None:
    assert one(b"a ENABLE condstore qresync\r\n") == Enable("a", ("CONDSTORE", "QRESYNC"))
    assert one(b"a ID NIL\r\n") == Id("a", None)
    assert one(b'a ID ("name" "Thunderbird" "version" "128.0" "os" NIL)\r\n') == Id(
        "a", {"name": "Thunderbird", "version": "128.0", "os": None})
    assert one(b"a ID ()\r\n") == Id("a", {})
    assert one(b'a GETQUOTA ""\r\n') == GetQuota("a", "")
    assert one(b"a GETQUOTAROOT inbox\r\n") == GetQuotaRoot("a", "INBOX")
    assert one(b'a SETQUOTA "" (storage 512)\r\n') == SetQuota("a", "", (("STORAGE", 512),))
    assert one(b'a SETQUOTA "" ()\r\n') == SetQuota("a", "", ())


def test_bare_lf_empty_lines_and_pipelining() -> None:
    out = results(b"\r\n\na NOOP\nb CHECK\r\nc UID FETCH 1 FLAGS\r\n")
    assert out == [Simple("a", "NOOP"), Simple("b", "CHECK"),
                   Fetch("c", True, seq("1"), (UID, FLAGS))]


def test_literal_content_is_never_read_as_syntax() -> None:
    assert one(b"a LOGIN {6+}\r\nx{3}\r\n {3+}\r\n\n\n\n\r\n") == Login("a", "x{3}\r\n", "\n\n\n")


def test_long_line_arriving_byte_by_byte() -> None:
    reader = CommandReader(70000, 1 << 20)
    data = b"a UID FETCH " + b",".join(b"%d" % n for n in range(1, 10000, 2)) + b" FLAGS\r\n"
    for i in range(len(data)):
        reader.feed(data[i : i + 1])
        result = reader.next()
    assert isinstance(result, Fetch)
    assert len(result.sequence.ranges) == 5000


def test_command_split_across_feeds() -> None:
    reader = CommandReader(8192, 1 << 20)
    data = b'a LOGIN "bob" {4}\r\npass\r\nb NOOP\r\n'
    out: list[ReaderResult | None] = []
    for i in range(len(data)):
        reader.feed(data[i : i + 1])
        while (result := reader.next()) is not None:
            out.append(result)
    assert out == [NeedContinuation("a", 4), Login("a", "bob", "pass"), Simple("b", "NOOP")]


def test_bad_result_type_is_distinct() -> None:
    assert isinstance(one(b"a FROB\r\n"), Bad)
