"""The MIME tree of a stored message: where each part's header and body lie in the bytes.

A light parser over ``bytes`` that never copies the message and never raises. It follows
Dovecot's message parser where RFC 2045/2046 leave room (broken mail must degrade the same
way a Dovecot user would see it):

- A header ends at the first empty line (CRLF or bare LF). A line without a colon is kept
  as a nameless field and parsing goes on. A header with no empty line runs to the end of
  its part (the body is then empty).
- A multipart's delimiter is any line that *starts with* ``--`` + boundary. Boundaries are
  checked innermost first, so the delimiter line of an enclosing multipart ends the inner
  one (an unterminated multipart). The CRLF before a delimiter line belongs to the
  delimiter, not to the body before it.
- A multipart without a boundary parameter, or whose body has no delimiter, has a single,
  empty ``text/plain`` child. Parts of a ``multipart/digest`` default to ``message/rfc822``.
- ``message/rfc822`` (and only that, like Dovecot 2.3) has one child: the encapsulated
  message, parsed as raw bytes whatever its transfer encoding says.
- Nesting deeper than ``MAX_DEPTH`` levels, or more than ``MAX_PARTS`` parts in a message,
  is not parsed further: the rest is a leaf body.

``parse_message`` reads only the top-level header (enough for ENVELOPE, header SEARCH and
sort keys); :meth:`MimeMessage.root` parses the whole tree the first time it is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hayate.mailbox.mime_fields import ContentType, parse_content_type

MAX_DEPTH = 100
MAX_PARTS = 10_000

CRLF = b"\r\n"


@dataclass(slots=True)
class HeaderField:
    """One header field: ``data[start:end]`` is the whole field with its continuation lines
    and line end; ``data[value_start:end]`` is what follows the colon."""

    key: str  # the name in lower case; "" for a line without a colon
    start: int
    value_start: int
    end: int


def parse_fields(data: bytes, start: int, end: int) -> list[HeaderField]:
    """The fields of the header block ``data[start:end]`` (which includes its empty line,
    when it has one), in order."""
    fields: list[HeaderField] = []
    pos = start
    find = data.find
    while pos < end:
        nl = find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        first = data[pos]
        if first == 0x20 or first == 0x09:  # continuation of the previous field
            if fields:
                fields[-1].end = line_end
            else:
                fields.append(HeaderField("", pos, pos, line_end))
        elif first == 0x0D or first == 0x0A:  # the empty line ending the header
            break
        else:
            colon = find(b":", pos, line_end)
            if colon < 0:
                fields.append(HeaderField("", pos, pos, line_end))
            else:
                name = data[pos:colon].rstrip(b" \t").decode("latin-1").lower()
                fields.append(HeaderField(name, pos, colon + 1, line_end))
        pos = line_end
    return fields


def field_value(data: bytes, f: HeaderField) -> bytes:
    """The field's value: unfolded (line ends removed, the whitespace after them kept),
    without the whitespace after the colon and without the final line end."""
    raw = data[f.value_start : f.end]
    if raw.endswith(b"\n"):
        raw = raw[:-2] if raw.endswith(CRLF) else raw[:-1]
    if b"\n" in raw:
        raw = raw.replace(CRLF, b"").replace(b"\n", b"")
    return raw.lstrip(b" \t")


def _body_start(data: bytes, start: int, limit: int) -> int:
    """Where the body starts for a header starting at ``start``: after its empty line, or
    -1 when there is none before ``limit``."""
    if start >= limit:
        return -1
    if data.startswith(CRLF, start):
        return start + 2
    if data[start] == 0x0A:
        return start + 1
    crlf = data.find(b"\n\r\n", start, limit)
    lf = data.find(b"\n\n", start, limit if crlf < 0 else crlf + 2)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf + 2
    if crlf >= 0:
        return crlf + 3
    return -1


@dataclass(slots=True, eq=False)
class MimePart:
    """One MIME entity: header ``data[start:body_start]``, body ``data[body_start:end]``."""

    data: bytes
    start: int
    body_start: int
    end: int
    default_digest: bool = False  # a part of multipart/digest (defaults to message/rfc822)
    children: list[MimePart] = field(default_factory=list)  # of a multipart
    message: MimePart | None = None  # the encapsulated message of a message/rfc822
    _fields: list[HeaderField] | None = None
    _ctype: ContentType | None = None

    @property
    def fields(self) -> list[HeaderField]:
        if self._fields is None:
            self._fields = parse_fields(self.data, self.start, self.body_start)
        return self._fields

    @property
    def content_type(self) -> ContentType:
        if self._ctype is None:
            self._ctype = parse_content_type(self.first("content-type"), self.default_digest)
        return self._ctype

    def first(self, name: str) -> bytes | None:
        """The value of the first field named ``name`` (lower case), or None."""
        for f in self.fields:
            if f.key == name:
                return field_value(self.data, f)
        return None

    def values(self, name: str) -> list[bytes]:
        """The values of every field named ``name`` (lower case), in order."""
        return [field_value(self.data, f) for f in self.fields if f.key == name]

    @property
    def is_multipart(self) -> bool:
        return self.content_type.is_multipart

    @property
    def is_message(self) -> bool:
        return self.message is not None

    @property
    def header_bytes(self) -> bytes:
        return self.data[self.start : self.body_start]

    @property
    def body_bytes(self) -> bytes:
        return self.data[self.body_start : self.end]


class MimeMessage:
    """A parsed message. The top-level header is parsed at once; the part tree on demand."""

    __slots__ = ("_parsed", "data", "top")

    def __init__(self, data: bytes) -> None:
        self.data = data
        body_start = _body_start(data, 0, len(data))
        if body_start < 0:
            body_start = len(data)
        self.top = MimePart(data, 0, body_start, len(data))
        self._parsed = False

    @property
    def fields(self) -> list[HeaderField]:
        return self.top.fields

    def first(self, name: str) -> bytes | None:
        return self.top.first(name)

    def values(self, name: str) -> list[bytes]:
        return self.top.values(name)

    @property
    def root(self) -> MimePart:
        """The top-level part with its whole tree (parsed the first time)."""
        if not self._parsed:
            self._parsed = True
            _TreeParser(self.data).fill(self.top, [], 0, None)
        return self.top


def parse_message(data: bytes) -> MimeMessage:
    return MimeMessage(data)


@dataclass(slots=True)
class _Delimiter:
    line_start: int
    line_end: int
    depth: int  # index in the boundary stack it was found with: 0 is the innermost
    close: bool


class _TreeParser:
    """Builds the tree of one message (see the module docstring for the rules).

    ``stack`` is the list of ``--boundary`` markers in force, innermost first. Every
    method returns the delimiter line that ended what it parsed, with ``depth`` counted
    in the ``stack`` it was given, or None when the data ran out.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.parts = 1
        # per marker: (searched from, next line start holding it or -1): a search from a
        # later position up to that line finds the same line again
        self._found: dict[bytes, tuple[int, int]] = {}

    # -- delimiters -------------------------------------------------------------------

    def _find_marker(self, marker: bytes, pos: int) -> int:
        """The start of the first line at or after ``pos`` (a line start) that begins
        with ``marker``, or -1."""
        cached = self._found.get(marker)
        if cached is not None and cached[0] <= pos and (cached[1] < 0 or cached[1] >= pos):
            return cached[1]
        data = self.data
        if data.startswith(marker, pos):
            at = pos
        else:
            nl = data.find(b"\n" + marker, pos)
            at = -1 if nl < 0 else nl + 1
        self._found[marker] = (pos, at)
        return at

    def _next_delimiter(self, pos: int, stack: list[bytes]) -> _Delimiter | None:
        """The first delimiter line of a boundary in ``stack`` at or after ``pos`` (a line
        start); when a line matches several, the innermost boundary has it."""
        best = -1
        best_depth = 0
        for depth, marker in enumerate(stack):
            at = self._find_marker(marker, pos)
            if at >= 0 and (best < 0 or at < best):
                best = at
                best_depth = depth
        if best < 0:
            return None
        data = self.data
        after = best + len(stack[best_depth])
        nl = data.find(b"\n", after)
        line_end = len(data) if nl < 0 else nl + 1
        return _Delimiter(best, line_end, best_depth, data.startswith(b"--", after))

    def _body_end(self, body_start: int, delimiter: _Delimiter | None) -> int:
        if delimiter is None:
            return len(self.data)
        end = delimiter.line_start
        if end >= 2 and self.data[end - 2 : end] == CRLF:
            end -= 2
        elif end >= 1 and self.data[end - 1] == 0x0A:
            end -= 1
        return max(end, body_start)

    # -- entities ---------------------------------------------------------------------

    def _entity(
        self, start: int, stack: list[bytes], depth: int, digest: bool, message: bool
    ) -> tuple[MimePart, _Delimiter | None]:
        """The entity whose header starts at ``start``: a part of a multipart, or the
        message inside a message/rfc822 part (``message``)."""
        self.parts += 1
        first = self._next_delimiter(start, stack)
        limit = len(self.data) if first is None else first.line_start
        body_start = _body_start(self.data, start, limit)
        if body_start < 0:
            # no empty line: the header runs to the delimiter (a part's header leaves the
            # line end before it to the delimiter, an encapsulated message's keeps it)
            body_start = limit if first is None or message else self._body_end(start, first)
        part = MimePart(self.data, start, body_start, len(self.data), default_digest=digest)
        return part, self.fill(part, stack, depth, first)

    def fill(
        self, part: MimePart, stack: list[bytes], depth: int, first: _Delimiter | None
    ) -> _Delimiter | None:
        """Parse ``part``'s body and set its end. ``first`` is the first delimiter at or
        after the part's start (None: there is none)."""
        ctype = part.content_type
        deep = depth >= MAX_DEPTH or self.parts >= MAX_PARTS
        floor = part.body_start
        if ctype.is_multipart and not deep:
            boundary = ctype.boundary
            if boundary:
                stop, floor = self._multipart(part, [b"--" + boundary, *stack], depth)
            else:
                stop = first
                self._add_empty_child(part)
        elif ctype.is_message and not deep:
            inner, stop = self._entity(part.body_start, stack, depth + 1, False, True)
            part.message = inner
            floor = inner.end
        else:
            stop = first
        part.end = max(self._body_end(part.body_start, stop), floor)
        return stop

    def _add_empty_child(self, part: MimePart) -> None:
        pos = part.body_start
        child = MimePart(self.data, pos, pos, pos)
        child._fields = []
        part.children.append(child)

    def _multipart(
        self, part: MimePart, stack: list[bytes], depth: int
    ) -> tuple[_Delimiter | None, int]:
        """The children of a multipart whose marker is ``stack[0]``. Returns the delimiter
        that ended it, counted in ``stack[1:]`` (the enclosing boundaries), and the least
        end of its body (after its last child, and after its close delimiter line when it
        has one)."""
        digest = part.content_type.subtype_lower == "digest"
        delimiter = self._next_delimiter(part.body_start, stack)
        while delimiter is not None and delimiter.depth == 0:
            if delimiter.close:
                break
            if self.parts >= MAX_PARTS:
                # too many parts: the rest of this multipart is not split any further
                delimiter = self._next_delimiter(delimiter.line_end, stack)
                continue
            child, delimiter = self._entity(
                delimiter.line_end, stack, depth + 1, digest, False
            )
            part.children.append(child)
        if not part.children:
            self._add_empty_child(part)
        floor = part.children[-1].end
        if delimiter is not None and delimiter.depth == 0:
            # closed: the epilogue runs to the next delimiter of an enclosing boundary
            floor = max(floor, delimiter.line_end)
            return self._next_delimiter(delimiter.line_end, stack[1:]), floor
        if delimiter is not None:
            delimiter.depth -= 1
        return delimiter, floor
