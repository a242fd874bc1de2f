"""The MIME parser on input nobody wrote by hand: generated trees must come back exactly,
mangled mail must never raise, and hostile nesting stays bounded."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.mailbox.test_mime_corpus import CORPUS

from hayate.imap import response
from hayate.mailbox import mime
from hayate.mailbox.mime_parts import MAX_DEPTH, MAX_PARTS, MimePart

# -- generated trees round-trip ---------------------------------------------------------


@dataclass
class Leaf:
    subtype: str
    body: bytes


@dataclass
class Multi:
    boundary: str
    children: list[Leaf | Multi | Wrapped]


@dataclass
class Wrapped:
    inner: Leaf | Multi


Node = Leaf | Multi | Wrapped

_line = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30
).map(lambda s: s.encode("utf-8"))
_body = st.lists(_line, max_size=4).map(lambda lines: b"\r\n".join(lines))
_leaf = st.builds(Leaf, st.sampled_from(["plain", "html", "x-data"]), _body)
_boundary = st.text(alphabet="abcdefghij0123456789'()+_,-./=", min_size=1, max_size=20)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(Multi, _boundary, st.lists(children, min_size=1, max_size=4)),
        st.builds(Wrapped, children.filter(lambda n: not isinstance(n, Wrapped))),
    )


_tree = st.recursive(_leaf, _extend, max_leaves=12)


def _boundaries(node: Node) -> list[str]:
    if isinstance(node, Multi):
        return [node.boundary] + [b for c in node.children for b in _boundaries(c)]
    if isinstance(node, Wrapped):
        return _boundaries(node.inner)
    return []


def _unambiguous(node: Node) -> bool:
    """RFC 2046: no boundary may be a prefix of another one, nor appear in a body."""
    found = _boundaries(node)
    return not any(a != b and b.startswith(a) for a in found for b in found) and len(
        set(found)
    ) == len(found)


def render(node: Node) -> bytes:
    """Header lines and body of ``node`` as a MIME entity."""
    if isinstance(node, Leaf):
        return b"Content-Type: text/%s\r\n\r\n%s" % (node.subtype.encode(), node.body)
    if isinstance(node, Wrapped):
        return b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n" + render(node.inner)
    marker = b"--" + node.boundary.encode()
    parts = [b'Content-Type: multipart/mixed; boundary="%s"\r\n\r\n' % node.boundary.encode()]
    parts.append(b"preamble\r\n")
    for child in node.children:
        parts.append(marker + b"\r\n" + render(child) + b"\r\n")
    parts.append(marker + b"--\r\nepilogue")
    return b"".join(parts)


def leaf_bodies(node: Node, path: tuple[int, ...]) -> list[tuple[tuple[int, ...], bytes]]:
    """(IMAP part number, body) of every leaf, numbered as RFC 3501 numbers them."""
    if isinstance(node, Leaf):
        return [(path or (1,), node.body)]
    if isinstance(node, Wrapped):
        inner = node.inner
        if isinstance(inner, Leaf):
            return [((*path, 1) if path else (1, 1), inner.body)]
        return leaf_bodies(inner, path if path else (1,))
    out: list[tuple[tuple[int, ...], bytes]] = []
    for index, child in enumerate(node.children, 1):
        out.extend(leaf_bodies(child, (*path, index)))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tree.filter(_unambiguous))
def test_generated_trees_come_back_exactly(tree: Node) -> None:
    data = b"From: gen@example.com\r\n" + render(tree)
    msg = mime.parse(data)
    for path, expected in leaf_bodies(tree, ()):
        assert mime.section(data, msg, path, None, ()) == expected, path
    structure = mime.bodystructure(msg, extended=True)
    response.encode(structure)  # a valid value tree


# -- mangled mail never raises ----------------------------------------------------------


def _check_part(part: MimePart, size: int) -> int:
    assert 0 <= part.start <= part.body_start <= part.end <= size
    count = 1
    for child in part.children:
        assert part.body_start <= child.start and child.end <= part.end
        count += _check_part(child, size)
    if part.message is not None:
        assert part.message.start == part.body_start and part.message.end <= part.end
        count += _check_part(part.message, size)
    return count


def exercise(data: bytes) -> None:
    msg = mime.parse(data)
    response.encode(mime.envelope(msg))
    response.encode(mime.bodystructure(msg, extended=True))
    response.encode(mime.bodystructure(msg, extended=False))
    _check_part(msg.root, len(data))
    header = mime.section(data, msg, (), "HEADER", ())
    text = mime.section(data, msg, (), "TEXT", ())
    assert header is not None and text is not None and header + text == data
    for path in [(1,), (2,), (1, 1), (2, 1), (1, 2, 3)]:
        for kind in (None, "MIME", "HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            mime.section(data, msg, path, kind, ("SUBJECT", "FROM"))
        with contextlib.suppress(mime.UnknownEncoding):
            mime.binary_section(data, msg, path)
    mime.header_matches(msg, "subject", "x")
    mime.text_matches(data, msg, "zz", headers=True)
    mime.base_subject(msg)
    mime.sent_date(msg)
    mime.first_address(msg, "from")


_edit = st.tuples(st.integers(0, 10_000), st.integers(0, 40), st.binary(max_size=12))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(CORPUS)), st.lists(_edit, max_size=6))
def test_mangled_corpus_messages_never_raise(
    name: str, edits: list[tuple[int, int, bytes]]
) -> None:
    data = CORPUS[name]
    for at, cut, insert in edits:
        at %= len(data) + 1
        data = data[:at] + insert + data[at + cut :]
    exercise(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    exercise(data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from([
            b"Content-Type: multipart/mixed; boundary=b\r\n", b"Content-Type: message/rfc822\r\n",
            b"--b\r\n", b"--b--\r\n", b"\r\n", b"x\r\n", b"Subject: =?utf-8?b?5pel?=\r\n",
            b"Content-Transfer-Encoding: base64\r\n", b"Content-Type: text/plain\r\n",
            b"From: a@b, (c) <d@e>, f:;\r\n", b"--", b"\n",
        ]),
        max_size=40,
    )
)
def test_mime_shaped_noise_never_raises(lines: list[bytes]) -> None:
    exercise(b"".join(lines))


# -- bounds -----------------------------------------------------------------------------


def depth_of(part: MimePart) -> int:
    below = [depth_of(c) for c in part.children]
    if part.message is not None:
        below.append(depth_of(part.message))
    return 1 + max(below, default=0)


def test_deep_nesting_stops_at_the_depth_limit() -> None:
    levels = 3 * MAX_DEPTH
    multipart = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(levels)
    )
    messages = b"Content-Type: message/rfc822\r\n\r\n" * levels
    for data in (multipart + b"\r\nbottom\r\n", messages + b"\r\nbottom\r\n"):
        msg = mime.parse(data)
        assert depth_of(msg.root) <= MAX_DEPTH + 2
        exercise(data)


def test_many_parts_stop_at_the_part_limit() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + (
        b"--b\r\n\r\nx\r\n" * (MAX_PARTS + 500)
    ) + b"--b--\r\n"
    msg = mime.parse(data)
    assert MAX_PARTS - 10 <= len(msg.root.children) <= MAX_PARTS
    last = msg.root.children[-1]
    assert last.end <= len(data)


def test_parts_without_blank_lines_do_not_rescan_the_message() -> None:
    # every part's header runs into the next delimiter: each must stop there
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + (
        b"--b\r\nContent-Type: text/plain\r\n" * 5000
    ) + b"--b--\r\n"
    msg = mime.parse(data)
    assert len(msg.root.children) == 5000
    assert mime.section(data, msg, (4999,), "MIME", ()) == b"Content-Type: text/plain"
