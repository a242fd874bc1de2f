"""The sans-I/O IMAP command reader: bytes in, parsed commands out (RFC 3501 §9 grammar,
LITERAL+ RFC 7888, and the arguments of the extensions in ``commands``).

Two stages:

1. Framing (``CommandReader.next``). A command is lines joined by literals: a line that ends
   in ``{n}`` or ``{n+}`` is followed by n raw bytes and then the rest of the command. The
   reader finds line ends with one ``find`` and only looks at a line's tail for a literal
   announcement. A synchronizing literal is reported once as ``NeedContinuation`` (the
   server writes ``+ OK``); a LITERAL+ one is simply waited for. Lines end in CRLF or a bare
   LF (like Dovecot).
2. Parsing (``grammar.CommandParser``) runs on one complete command, literals included, so
   it never waits for bytes: recursive descent with compiled regular expressions.

Limits and recovery — the reader never raises and always resynchronizes:
- The command's text outside literals is limited to ``max_line`` bytes. Past it the reader
  answers ``Bad("line too long")`` at once and drops bytes up to the next line end.
- All literals of one command together are limited to ``max_literal`` bytes. A synchronizing
  literal over it gets ``Bad(code="TOOBIG")`` and the client, told no, sends nothing more
  for that command. A LITERAL+ one gets the same answer and the reader drops its bytes and
  the rest of that command as they arrive, never holding them.
- A syntax error anywhere gives ``Bad`` with a short precise text and the tag when one could
  be read; the next command parses normally. An unknown SEARCH/SORT CHARSET gives ``No``
  with ``BADCHARSET (UTF-8 US-ASCII)``.
- Nesting (SEARCH parentheses and NOT/OR chains) is limited (``grammar_search.MAX_DEPTH``).

Fast path: ``[UID] FETCH <set> <items>`` without literals (mbsync sends thousands per
second) is matched by one regular expression, and the parsed item list is cached by its
bytes, so only the sequence set is parsed each time.

``read_line`` hands out raw lines for IDLE's DONE and AUTHENTICATE answers.
"""

from __future__ import annotations

import re

from hayate.imap.commands import (
    Bad,
    Fetch,
    FetchItem,
    NeedContinuation,
    No,
    ReaderResult,
    SequenceSet,
)
from hayate.imap.grammar import CommandParser
from hayate.imap.tokens import TAG, Refuse, Syntax

__all__ = ["Bad", "CommandReader", "NeedContinuation", "No", "ReaderResult"]

_FETCH_CACHE_SIZE = 256

# The literal announcement at the end of a line (searched in the last bytes only).
_LITERAL_TAIL = re.compile(rb"~?\{(\d{1,20})(\+?)\}\r?\n\Z")
_TAIL_WINDOW = 32
# Fast path for ``tag [UID] FETCH set items`` with no literal.
_FAST_FETCH = re.compile(
    rb'([^\x00-\x20\x7f-\xff(){%*"\\+]+) ((?:[Uu][Ii][Dd] )?)[Ff][Ee][Tt][Cc][Hh] '
    rb"([0-9*:,]+) ([^{\r\n]+)\r?\n\Z"
)

# ----------------------------------------------------------------------------- framing

_NORMAL, _DROP_LINE, _DROP_COMMAND = range(3)


class CommandReader:
    """Bytes in (``feed``), one result at a time out (``next``). See the module docstring."""

    __slots__ = (
        "_buf",
        "_drop_literal",
        "_fetch_cache",
        "_literal_end",
        "_literal_total",
        "_mode",
        "_scanned",
        "_segment",
        "_text_len",
        "_with_literals",
        "max_line",
        "max_literal",
    )

    def __init__(self, max_line: int = 65536, max_literal: int = 50 * 1024 * 1024) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self._buf = bytearray()
        self._mode = _NORMAL
        self._segment = 0  # where the current line segment starts in _buf
        self._scanned = 0  # no line end in _buf before this index (within the segment)
        self._text_len = 0  # non-literal bytes of the command before _segment
        self._literal_total = 0
        self._literal_end = -1  # index in _buf where the awaited literal ends
        self._with_literals = False
        self._drop_literal = 0  # _DROP_COMMAND: literal bytes still to drop
        self._fetch_cache: dict[tuple[bytes, bool], tuple[
            tuple[FetchItem, ...], int | None, bool]] = {}

    # -- input ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        return len(self._buf)

    def clear(self) -> None:
        """Forget everything buffered and any partial command (after STARTTLS)."""
        self._buf.clear()
        self._reset()
        self._mode = _NORMAL
        self._drop_literal = 0

    def _reset(self) -> None:
        self._segment = 0
        self._scanned = 0
        self._text_len = 0
        self._literal_total = 0
        self._literal_end = -1
        self._with_literals = False

    def _tag_in_buffer(self) -> str | None:
        match = TAG.match(self._buf)
        if match is None or match.end() >= len(self._buf):
            return None
        if self._buf[match.end()] != 0x20:
            return None
        return match.group().decode("ascii")

    # -- raw lines -----------------------------------------------------------------------

    def read_line(self) -> bytes | None:
        """The next raw line without its line end (for IDLE's ``DONE`` and AUTHENTICATE
        answers), or None until a whole line is here. A line longer than ``max_line`` is
        returned cut to ``max_line + 1`` bytes (so the caller sees it is too long) and the
        rest of it is dropped as it arrives. Only call it between commands."""
        buf = self._buf
        if self._mode == _DROP_LINE and not self._drop_line():
            return None
        newline = buf.find(b"\n")
        if newline < 0:
            if len(buf) > self.max_line:
                line = bytes(buf[: self.max_line + 1])
                buf.clear()
                self._mode = _DROP_LINE
                return line
            return None
        end = newline - 1 if newline > 0 and buf[newline - 1] == 0x0D else newline
        line = bytes(buf[:end])
        del buf[: newline + 1]
        return line

    # -- commands ------------------------------------------------------------------------

    def next(self) -> ReaderResult | None:
        """The next command, continuation request or error; None when more bytes are
        needed."""
        try:
            return self._next()
        except Exception as exc:  # the reader must never raise; report and resync
            self.clear()
            return Bad(None, f"internal parser error ({type(exc).__name__})")

    def _drop_line(self) -> bool:
        """_DROP_LINE: drop bytes up to a line end. True when the line end was reached."""
        buf = self._buf
        newline = buf.find(b"\n")
        if newline < 0:
            buf.clear()
            return False
        del buf[: newline + 1]
        self._mode = _NORMAL
        self._reset()
        return True

    def _drop_command(self) -> bool:
        """_DROP_COMMAND: drop a refused LITERAL+ and the rest of its command."""
        buf = self._buf
        while True:
            if self._drop_literal:
                taken = min(self._drop_literal, len(buf))
                del buf[:taken]
                self._drop_literal -= taken
                if self._drop_literal:
                    return False
            newline = buf.find(b"\n")
            if newline < 0:
                if len(buf) > _TAIL_WINDOW:
                    del buf[: len(buf) - _TAIL_WINDOW]
                return False
            tail = _LITERAL_TAIL.search(buf, max(0, newline + 1 - _TAIL_WINDOW), newline + 1)
            # Read the match before the buffer it points into changes.
            plus_literal = int(tail.group(1)) if tail is not None and tail.group(2) else -1
            del buf[: newline + 1]
            if plus_literal >= 0:
                self._drop_literal = plus_literal
                continue
            self._mode = _NORMAL
            self._reset()
            return True

    def _next(self) -> ReaderResult | None:
        buf = self._buf
        while True:
            if self._mode == _DROP_LINE:
                if not self._drop_line():
                    return None
                continue
            if self._mode == _DROP_COMMAND:
                if not self._drop_command():
                    return None
                continue
            if self._literal_end >= 0:
                if len(buf) < self._literal_end:
                    return None
                self._segment = self._literal_end
                self._literal_end = -1
            segment = self._segment
            newline = buf.find(b"\n", max(segment, self._scanned))
            if newline < 0:
                self._scanned = len(buf)
                if self._text_len + len(buf) - segment > self.max_line:
                    tag = self._tag_in_buffer()
                    buf.clear()
                    self._reset()
                    self._mode = _DROP_LINE
                    return Bad(tag, "line too long")
                return None
            line_len = newline - segment
            if self._text_len + line_len > self.max_line:
                tag = self._tag_in_buffer()
                del buf[: newline + 1]
                self._reset()
                return Bad(tag, "line too long")
            if segment == 0 and line_len <= 1 and (line_len == 0 or buf[0] == 0x0D):
                del buf[: newline + 1]  # an empty line: ignored, like Dovecot
                self._scanned = 0
                continue
            tail = None
            if newline > segment and buf[newline - 1 - (buf[newline - 1] == 0x0D)] == 0x7D:
                tail = _LITERAL_TAIL.search(
                    buf, max(segment, newline + 1 - _TAIL_WINDOW), newline + 1
                )
            if tail is None:
                end = newline + 1
                data = bytes(buf[:end])
                del buf[:end]
                with_literals = self._with_literals
                self._reset()
                return self._parse(data, with_literals)
            size = int(tail.group(1))
            sync = not tail.group(2)
            self._text_len += line_len
            if self._literal_total + size > self.max_literal:
                tag = self._tag_in_buffer()
                del buf[: newline + 1]
                self._reset()
                if not sync:
                    self._mode = _DROP_COMMAND
                    self._drop_literal = size
                return Bad(tag, "literal too big", code="TOOBIG")
            self._literal_total += size
            self._with_literals = True
            self._literal_end = newline + 1 + size
            if sync:
                return NeedContinuation(self._tag_in_buffer(), size)

    # -- parsing -------------------------------------------------------------------------

    def _parse(self, data: bytes, with_literals: bool) -> ReaderResult:
        if not with_literals:
            fast = _FAST_FETCH.match(data)
            if fast is not None:
                result = self._fast_fetch(fast)
                if result is not None:
                    return result
        parser = CommandParser(data)
        try:
            return parser.command()
        except Syntax as exc:
            return Bad(parser.tag, exc.text, exc.code)
        except Refuse as exc:
            return No(parser.tag or "*", exc.text, exc.code)
        except RecursionError:
            return Bad(parser.tag, "command nested too deeply")

    def _fast_fetch(self, match: re.Match[bytes]) -> Fetch | None:
        uid = bool(match.group(2))
        rest = match.group(4).rstrip(b"\r")
        cached = self._fetch_cache.get((rest, uid))
        if cached is None:
            parser = CommandParser(rest)
            try:
                cached = parser.fetch_items_and_modifiers(uid)
            except (Syntax, Refuse, RecursionError):
                return None  # the full parser will report it with the tag
            if len(self._fetch_cache) >= _FETCH_CACHE_SIZE:
                self._fetch_cache.clear()
            self._fetch_cache[(rest, uid)] = cached
        try:
            sequence = SequenceSet.parse(match.group(3))
        except ValueError:
            return None
        items, changed_since, vanished = cached
        return Fetch(match.group(1).decode("ascii"), uid, sequence, items, changed_since,
                     vanished)


