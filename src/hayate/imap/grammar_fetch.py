"""The FETCH arguments: items, macros, BODY[section]<partial>, BINARY and modifiers
(CHANGEDSINCE, VANISHED of RFC 7162)."""

from __future__ import annotations

from hayate.imap.commands import (
    FETCH_MACROS,
    FETCH_SIMPLE,
    ITEM_MODSEQ,
    ITEM_UID,
    MAX_NUMBER,
    PARTIAL_TO_END,
    FetchItem,
    Section,
)
from hayate.imap.tokens import ITEM_NAME, PARTIAL, SECTION_TEXT, Cursor


class FetchGrammar(Cursor):
    """Reads FETCH item lists."""

    __slots__ = ()

    def fetch_items_and_modifiers(
        self, uid: bool
    ) -> tuple[tuple[FetchItem, ...], int | None, bool]:
        """``items [SP (modifiers)]`` to the end of the data."""
        items: list[FetchItem] = []
        if self.peek() == 0x28:
            self.pos += 1
            while self.peek() != 0x29:
                if items:
                    self.char(0x20, "expected a space between fetch items")
                items.append(self.fetch_item())
            self.pos += 1
            if not items:
                self.fail("empty fetch item list")
        else:
            start = self.pos
            found = self.match(ITEM_NAME)
            macro = found.group().upper().decode("ascii") if found else ""
            if macro in FETCH_MACROS and self.peek() in (0x20, -1):
                items.extend(FETCH_MACROS[macro])
            else:
                self.pos = start
                items.append(self.fetch_item())
        changed_since: int | None = None
        vanished = False
        if not self.at_end():
            if self.peek() == 0x29:
                self.fail("unbalanced parentheses")
            self.sp("fetch modifiers")
            self.char(0x28, "expected ( before fetch modifiers")
            first = True
            while self.peek() != 0x29:
                if not first:
                    self.char(0x20, "expected a space between fetch modifiers")
                first = False
                modifier = self.keyword("fetch modifier")
                if modifier == "CHANGEDSINCE":
                    self.sp("mod-sequence")
                    changed_since = self.modseq()
                elif modifier == "VANISHED":
                    vanished = True
                else:
                    self.fail(f"unknown fetch modifier {modifier}")
            self.pos += 1
        self.end()
        if vanished and (not uid or changed_since is None):
            self.fail("VANISHED needs UID FETCH with CHANGEDSINCE")
        if uid and ITEM_UID not in items:
            items.insert(0, ITEM_UID)
        if changed_since is not None and ITEM_MODSEQ not in items:
            items.append(ITEM_MODSEQ)
        return tuple(dict.fromkeys(items)), changed_since, vanished

    def fetch_item(self) -> FetchItem:
        found = self.match(ITEM_NAME)
        if found is None:
            self.fail("missing fetch item" if self.at_end() else "invalid fetch item")
        name = found.group().upper().decode("ascii")
        bracket = self.peek() == 0x5B
        if not bracket:
            if name in FETCH_SIMPLE:
                return FetchItem(name)
            if name in FETCH_MACROS:
                self.fail(f"{name} must be the only fetch item")
            self.fail(f"unknown fetch item {name[:40]}")
        self.pos += 1
        if name in ("BODY", "BODY.PEEK"):
            section = self.section()
            partial = self.partial()
            return FetchItem("BODY[]", section, name == "BODY.PEEK", partial)
        if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
            part = self.section_part() if self.peek() != 0x5D else ()
            self.char(0x5D, "expected ] after the binary section")
            partial = self.partial() if name != "BINARY.SIZE" else None
            return FetchItem(
                "BINARY.SIZE" if name == "BINARY.SIZE" else "BINARY",
                Section(part), name == "BINARY.PEEK", partial,
            )
        self.fail(f"unknown fetch item {name[:40]}")

    def section_part(self) -> tuple[int, ...]:
        parts = [self.nz_number("section part")]
        while self.peek() == 0x2E and self.pos + 1 < len(self.data) and (
            0x30 <= self.data[self.pos + 1] <= 0x39
        ):
            self.pos += 1
            parts.append(self.nz_number("section part"))
        return tuple(parts)

    def section(self) -> Section:
        """After ``[`` up to and including ``]``."""
        if self.peek() == 0x5D:
            self.pos += 1
            return Section()
        part: tuple[int, ...] = ()
        if 0x30 <= self.peek() <= 0x39:
            part = self.section_part()
            if self.peek() == 0x5D:
                self.pos += 1
                return Section(part)
            self.char(0x2E, "invalid section")
        found = self.match(SECTION_TEXT)
        text = found.group().upper().decode("ascii") if found else ""
        fields: tuple[str, ...] = ()
        if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            self.sp("header list")
            fields = self.header_list()
        elif text == "MIME":
            if not part:
                self.fail("MIME needs a part number")
        elif text not in ("HEADER", "TEXT"):
            self.fail("invalid section")
        self.char(0x5D, "expected ] after the section")
        return Section(part, text, fields)

    def header_list(self) -> tuple[str, ...]:
        self.char(0x28, "expected ( before the header list")
        names: list[str] = []
        while self.peek() != 0x29:
            if names:
                self.char(0x20, "expected a space between header names")
            raw = self.astring("header name")
            if not raw or any(b <= 0x20 or b >= 0x7F or b == 0x3A for b in raw):
                self.fail("invalid header name")
            names.append(raw.decode("ascii").upper())
        self.pos += 1
        if not names:
            self.fail("empty header list")
        return tuple(names)

    def partial(self) -> tuple[int, int] | None:
        if self.peek() != 0x3C:
            return None
        found = self.match(PARTIAL)
        if found is None:
            self.fail("invalid partial range")
        offset = int(found.group(1))
        # Like Dovecot: <n> means from n to the end and <n.0> is empty.
        length = PARTIAL_TO_END if found.group(2) is None else int(found.group(2))
        if offset > MAX_NUMBER or (length > MAX_NUMBER and length != PARTIAL_TO_END):
            self.fail("invalid partial range")
        return offset, length

