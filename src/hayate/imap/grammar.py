"""The IMAP command grammar: one complete command's bytes → a ``commands`` object.

``CommandParser(data).command()`` returns the command or raises ``tokens.Syntax`` /
``tokens.Refuse``; the tag is in ``.tag`` as soon as it was read. Each command has one
``cmd_*`` method; ``_HANDLERS`` maps command names to them.
"""

from __future__ import annotations

import binascii
import datetime

from hayate.imap.commands import (
    MAX_MODSEQ,
    SEARCH_RETURN_OPTIONS,
    SIMPLE_COMMANDS,
    SORT_KEYS,
    STATUS_ITEMS,
    Append,
    Authenticate,
    Command,
    Copy,
    Create,
    Delete,
    Enable,
    Fetch,
    GetQuota,
    GetQuotaRoot,
    Id,
    List,
    Login,
    Qresync,
    Rename,
    Search,
    Select,
    SequenceSet,
    SetQuota,
    Simple,
    Sort,
    Status,
    Store,
    StoreMode,
    Subscribe,
    UidExpunge,
)
from hayate.imap.grammar_fetch import FetchGrammar
from hayate.imap.grammar_search import SearchGrammar
from hayate.imap.tokens import ATOM, BASE64, FLAG, TAG, utf8


class CommandParser(FetchGrammar, SearchGrammar):
    """Recursive descent over one complete command (literals inline)."""

    __slots__ = ()

    def command(self) -> Command:
        tag = self.match(TAG)
        if tag is None:
            if self.at_end() or self.peek() == 0x20:
                self.fail("missing tag")
            self.fail("invalid tag")
        if self.peek() not in (0x20, -1):
            self.fail("invalid tag")
        self.tag = tag.group().decode("ascii")
        self.sp("command")
        name = self.match(ATOM)
        if name is None:
            self.fail("invalid command")
        command = name.group().upper().decode("ascii")
        handler = _HANDLERS.get(command)
        if handler is None:
            if command in SIMPLE_COMMANDS:
                self.end()
                return Simple(self.tag, command)
            self.fail("unknown command")
        return handler(self, self.tag, command, False)

    def cmd_uid(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("UID command")
        sub = self.keyword("UID command")
        if sub == "EXPUNGE":
            self.sp("sequence set")
            sequence = self.seqset()
            self.end()
            return UidExpunge(tag, sequence)
        handler = _UID_HANDLERS.get(sub)
        if handler is None:
            self.fail(f"unknown UID command {sub}")
        return handler(self, tag, sub, True)

    def cmd_login(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("user name")
        user = utf8(self.astring("user name"), "user name")
        self.sp("password")
        password = utf8(self.astring("password"), "password")
        self.end()
        return Login(tag, user, password)

    def cmd_authenticate(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("mechanism")
        mechanism = self.keyword("mechanism")
        initial: bytes | None = None
        if not self.at_end():
            self.sp("initial response")
            found = self.match(BASE64)
            if found is None:
                self.fail("invalid initial response")
            raw = found.group()
            if raw == b"=":
                initial = b""
            else:
                try:
                    initial = binascii.a2b_base64(raw, strict_mode=True)
                except binascii.Error:
                    self.fail("invalid base64 in the initial response")
        self.end()
        return Authenticate(tag, mechanism, initial)

    def cmd_select(self, tag: str, name: str, _uid: bool) -> Command:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        condstore = False
        qresync: Qresync | None = None
        if not self.at_end():
            self.sp("select parameters")
            self.char(0x28, "expected ( before select parameters")
            first = True
            while self.peek() != 0x29:
                if not first:
                    self.char(0x20, "expected a space between select parameters")
                first = False
                param = self.keyword("select parameter")
                if param == "CONDSTORE":
                    condstore = True
                elif param == "QRESYNC":
                    self.sp("QRESYNC parameters")
                    qresync = self.qresync_params()
                else:
                    self.fail(f"unknown select parameter {param}")
            self.pos += 1
        self.end()
        return Select(tag, mailbox, name == "EXAMINE", condstore, qresync)

    def qresync_params(self) -> Qresync:
        self.char(0x28, "expected ( before QRESYNC parameters")
        uidvalidity = self.nz_number("UIDVALIDITY")
        self.sp("mod-sequence")
        modseq = self.modseq()
        known: SequenceSet | None = None
        seq_match: tuple[SequenceSet, SequenceSet] | None = None
        if self.peek() == 0x20:
            self.pos += 1
            if self.peek() != 0x28:
                known = self.seqset()
                if self.peek() == 0x20:
                    self.pos += 1
            if self.peek() == 0x28:
                self.pos += 1
                seqs = self.seqset()
                self.sp("known UIDs")
                uids = self.seqset()
                self.char(0x29, "expected ) after the sequence match data")
                seq_match = (seqs, uids)
        self.char(0x29, "expected ) after QRESYNC parameters")
        return Qresync(uidvalidity, modseq, known, seq_match)

    def cmd_create(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        uses: tuple[str, ...] = ()
        if not self.at_end():
            self.sp("create parameters")
            self.char(0x28, "expected ( before create parameters")
            param = self.keyword("create parameter")
            if param != "USE":
                self.fail(f"unknown create parameter {param}")
            self.sp("special-use list")
            uses = self.flag_list_any()
            self.char(0x29, "expected ) after create parameters")
        self.end()
        return Create(tag, mailbox, uses)

    def flag_list_any(self) -> tuple[str, ...]:
        """A list of ``\\Name`` attributes (special-use), case kept."""
        self.char(0x28, "expected ( before the attribute list")
        out: list[str] = []
        while self.peek() != 0x29:
            if out:
                self.char(0x20, "expected a space between attributes")
            found = self.match(FLAG)
            if found is None:
                self.fail("invalid attribute")
            out.append(found.group().decode("ascii"))
        self.pos += 1
        return tuple(out)

    def cmd_delete(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        self.end()
        return Delete(tag, mailbox)

    def cmd_rename(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("mailbox name")
        old = self.mailbox()
        self.sp("new mailbox name")
        new = self.mailbox()
        self.end()
        return Rename(tag, old, new)

    def cmd_subscribe(self, tag: str, name: str, _uid: bool) -> Command:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        self.end()
        return Subscribe(tag, mailbox, name == "SUBSCRIBE")

    def cmd_list(self, tag: str, name: str, _uid: bool) -> Command:
        lsub = name == "LSUB"
        self.sp("reference")
        selection: list[str] = []
        extended = False
        if self.peek() == 0x28 and not lsub:
            extended = True
            selection = self.paren_atoms("selection option")
            for option in selection:
                if option not in ("SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"):
                    self.fail(f"unknown selection option {option}")
            if "RECURSIVEMATCH" in selection and len(set(selection)) == 1:
                self.fail("RECURSIVEMATCH needs another selection option")
            self.sp("reference")
        reference = self.mailbox()
        self.sp("mailbox pattern")
        patterns: list[str] = []
        if self.peek() == 0x28 and not lsub:
            extended = True
            self.pos += 1
            while self.peek() != 0x29:
                if patterns:
                    self.char(0x20, "expected a space between patterns")
                patterns.append(self.list_mailbox())
            self.pos += 1
            if not patterns:
                self.fail("empty pattern list")
        else:
            patterns.append(self.list_mailbox())
        returns: list[str] = []
        status_items: tuple[str, ...] = ()
        if not self.at_end() and not lsub:
            self.sp("RETURN")
            if self.keyword("RETURN") != "RETURN":
                self.fail("expected RETURN")
            extended = True
            self.sp("return options")
            self.char(0x28, "expected ( before return options")
            while self.peek() != 0x29:
                if returns:
                    self.char(0x20, "expected a space between return options")
                option = self.keyword("return option")
                if option == "STATUS":
                    self.sp("status items")
                    status_items = self.status_items()
                elif option not in ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE"):
                    self.fail(f"unknown return option {option}")
                returns.append(option)
            self.pos += 1
        self.end()
        return List(tag, reference, tuple(patterns), frozenset(selection), frozenset(returns),
                    status_items, lsub, extended)

    def status_items(self) -> tuple[str, ...]:
        items = self.paren_atoms("status item")
        if not items:
            self.fail("empty status item list")
        for item in items:
            if item not in STATUS_ITEMS:
                self.fail(f"unknown status item {item}")
        return tuple(items)

    def cmd_status(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        self.sp("status items")
        items = self.status_items()
        self.end()
        return Status(tag, mailbox, items)

    def cmd_append(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        self.sp("message")
        flags: tuple[str, ...] = ()
        date: datetime.datetime | None = None
        if self.peek() == 0x28:
            flags = self.flag_list()
            self.sp("message")
        if self.peek() == 0x22:
            date = self.date_time()
            self.sp("message")
        if self.peek() not in (0x7B, 0x7E):
            self.fail("expected the message as a literal")
        message = self.literal(allow8=True)
        if not self.at_end():
            self.fail("MULTIAPPEND is not supported" if self.peek() == 0x20
                      else "unexpected data after the message")
        return Append(tag, mailbox, flags, date, message)

    # -- FETCH ---------------------------------------------------------------------------

    def cmd_fetch(self, tag: str, _name: str, uid: bool) -> Command:
        self.sp("sequence set")
        sequence = self.seqset()
        self.sp("fetch items")
        items, changed_since, vanished = self.fetch_items_and_modifiers(uid)
        return Fetch(tag, uid, sequence, items, changed_since, vanished)

    # -- STORE, COPY, MOVE ----------------------------------------------------------------

    def cmd_store(self, tag: str, _name: str, uid: bool) -> Command:
        self.sp("sequence set")
        sequence = self.seqset()
        self.sp("store item")
        unchanged_since: int | None = None
        if self.peek() == 0x28:
            self.pos += 1
            if self.keyword("store modifier") != "UNCHANGEDSINCE":
                self.fail("unknown store modifier")
            self.sp("mod-sequence")
            unchanged_since = self.modseq()
            self.char(0x29, "expected ) after store modifiers")
            self.sp("store item")
        mode: StoreMode = "set"
        if self.peek() == 0x2B:
            mode = "add"
            self.pos += 1
        elif self.peek() == 0x2D:
            mode = "remove"
            self.pos += 1
        item = self.keyword("store item")
        if item not in ("FLAGS", "FLAGS.SILENT"):
            self.fail(f"unknown store item {item[:40]}")
        self.sp("flags")
        if self.peek() == 0x28:
            flags = self.flag_list()
        else:
            single = [self.flag()]
            while self.peek() == 0x20:
                self.pos += 1
                single.append(self.flag())
            flags = tuple(single)
        self.end()
        return Store(tag, uid, sequence, mode, item == "FLAGS.SILENT", tuple(
            dict.fromkeys(flags)), unchanged_since)

    def cmd_copy(self, tag: str, name: str, uid: bool) -> Command:
        self.sp("sequence set")
        sequence = self.seqset()
        self.sp("mailbox name")
        mailbox = self.mailbox()
        self.end()
        return Copy(tag, uid, sequence, mailbox, name == "MOVE")

    # -- SEARCH and SORT ------------------------------------------------------------------

    def cmd_search(self, tag: str, _name: str, uid: bool) -> Command:
        self.sp("search criteria")
        returns: tuple[str, ...] | None = None
        start = self.pos
        first = self.atom_or_none()
        if first == "RETURN":
            self.sp("return options")
            options = self.paren_atoms("return option")
            for option in options:
                if option not in SEARCH_RETURN_OPTIONS:
                    self.fail(f"unknown search return option {option}")
            returns = tuple(dict.fromkeys(options)) or ("ALL",)
            self.sp("search criteria")
            start = self.pos
            first = self.atom_or_none()
        charset: str | None = None
        if first == "CHARSET":
            self.sp("charset")
            charset = self.charset_name()
            self.sp("search criteria")
        else:
            self.pos = start
        key = self.search_criteria()
        return Search(tag, uid, charset, key, returns)

    def cmd_sort(self, tag: str, _name: str, uid: bool) -> Command:
        self.sp("sort criteria")
        self.char(0x28, "expected ( before sort criteria")
        criteria: list[tuple[str, bool]] = []
        reverse = False
        while self.peek() != 0x29:
            if criteria or reverse:
                self.char(0x20, "expected a space between sort criteria")
            sort_key = self.keyword("sort key")
            if sort_key == "REVERSE":
                if reverse:
                    self.fail("REVERSE twice")
                reverse = True
                continue
            if sort_key not in SORT_KEYS:
                self.fail(f"unknown sort key {sort_key[:40]}")
            criteria.append((sort_key, reverse))
            reverse = False
        self.pos += 1
        if reverse or not criteria:
            self.fail("invalid sort criteria")
        self.sp("charset")
        charset = self.charset_name()
        self.sp("search criteria")
        key = self.search_criteria()
        return Sort(tag, uid, tuple(criteria), charset, key)

    # -- the rest ------------------------------------------------------------------------

    def cmd_enable(self, tag: str, _name: str, _uid: bool) -> Command:
        capabilities: list[str] = []
        while not self.at_end():
            self.sp("capability")
            capabilities.append(self.keyword("capability"))
        if not capabilities:
            self.fail("missing capability")
        return Enable(tag, tuple(capabilities))

    def cmd_id(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("ID parameters")
        if self.nstring_nil():
            self.end()
            return Id(tag, None)
        self.char(0x28, "expected ( or NIL")
        params: dict[str, str | None] = {}
        while self.peek() != 0x29:
            if params:
                self.char(0x20, "expected a space between ID parameters")
            key = self.string("ID field name")
            self.sp("ID value")
            value = self.nstring()
            if len(key) > 30 or (value is not None and len(value) > 1024):
                self.fail("ID field too long")
            if len(params) >= 30:
                self.fail("too many ID fields")
            params[utf8(key, "ID field")] = (
                None if value is None else value.decode("utf-8", "replace")
            )
        self.pos += 1
        self.end()
        return Id(tag, params)

    def nstring_nil(self) -> bool:
        if self.data[self.pos : self.pos + 3].upper() == b"NIL" and self.pos + 3 == len(
            self.data
        ):
            self.pos += 3
            return True
        return False

    def cmd_getquota(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("quota root")
        root = utf8(self.astring("quota root"), "quota root")
        self.end()
        return GetQuota(tag, root)

    def cmd_getquotaroot(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("mailbox name")
        mailbox = self.mailbox()
        self.end()
        return GetQuotaRoot(tag, mailbox)

    def cmd_setquota(self, tag: str, _name: str, _uid: bool) -> Command:
        self.sp("quota root")
        root = utf8(self.astring("quota root"), "quota root")
        self.sp("quota limits")
        self.char(0x28, "expected ( before quota limits")
        limits: list[tuple[str, int]] = []
        while self.peek() != 0x29:
            if limits:
                self.char(0x20, "expected a space between quota limits")
            resource = self.keyword("quota resource")
            self.sp("quota limit")
            limits.append((resource, self.number("quota limit", MAX_MODSEQ)))
        self.pos += 1
        self.end()
        return SetQuota(tag, root, tuple(limits))


_HANDLERS = {
    "LOGIN": CommandParser.cmd_login,
    "AUTHENTICATE": CommandParser.cmd_authenticate,
    "SELECT": CommandParser.cmd_select,
    "EXAMINE": CommandParser.cmd_select,
    "CREATE": CommandParser.cmd_create,
    "DELETE": CommandParser.cmd_delete,
    "RENAME": CommandParser.cmd_rename,
    "SUBSCRIBE": CommandParser.cmd_subscribe,
    "UNSUBSCRIBE": CommandParser.cmd_subscribe,
    "LIST": CommandParser.cmd_list,
    "LSUB": CommandParser.cmd_list,
    "STATUS": CommandParser.cmd_status,
    "APPEND": CommandParser.cmd_append,
    "FETCH": CommandParser.cmd_fetch,
    "STORE": CommandParser.cmd_store,
    "COPY": CommandParser.cmd_copy,
    "MOVE": CommandParser.cmd_copy,
    "SEARCH": CommandParser.cmd_search,
    "SORT": CommandParser.cmd_sort,
    "UID": CommandParser.cmd_uid,
    "ENABLE": CommandParser.cmd_enable,
    "ID": CommandParser.cmd_id,
    "GETQUOTA": CommandParser.cmd_getquota,
    "GETQUOTAROOT": CommandParser.cmd_getquotaroot,
    "SETQUOTA": CommandParser.cmd_setquota,
}
_UID_HANDLERS = {
    "FETCH": CommandParser.cmd_fetch,
    "STORE": CommandParser.cmd_store,
    "COPY": CommandParser.cmd_copy,
    "MOVE": CommandParser.cmd_copy,
    "SEARCH": CommandParser.cmd_search,
    "SORT": CommandParser.cmd_sort,
}

