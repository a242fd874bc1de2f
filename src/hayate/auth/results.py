"""The Authentication-Results header field (RFC 8601): writing ours, removing forged ones.

:func:`authentication_results` formats one field from the check results, e.g.::

    Authentication-Results: mx.example.net;
        spf=pass (ip4:192.0.2.0/24 matched) smtp.mailfrom=example.com;
        spf=none (no SPF record) smtp.helo=mail.example.com;
        dkim=pass header.d=example.com header.s=sel header.a=rsa-sha256
        header.b=abcd1234;
        dmarc=pass (p=REJECT) header.from=example.com;
        arc=none

SPF can appear twice: the result for the MAIL FROM identity (``smtp.mailfrom``; for the
null sender it is the HELO identity, ``smtp.helo``), then the separate check of the HELO
name (``smtp.helo``, RFC 7208 2.3) when there is one. Each method starts on its own
continuation line (indented with a tab); a line longer than
78 columns is folded again at a space. Reasons go into comments (parentheses and
backslashes escaped, control and non-ASCII characters replaced, at most 120 characters);
values that are not RFC 2045 tokens are quoted. The result is one field, CRLF-terminated,
ready to prepend to the message.

:func:`remove_our_results` drops every Authentication-Results field that names *our*
authserv-id from an incoming message (RFC 8601 5: a field with our id that we did not write
is forged); fields of other receivers are kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from hayate.auth.canon import field_name, field_value, header_fields, split_message
from hayate.auth.dmarc import DmarcResult
from hayate.auth.spf import SpfResult
from hayate.auth.verdicts import ArcVerdict, DkimVerdict

HEADER = "Authentication-Results"
WIDTH = 78
_TAB_WIDTH = 8
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~@]+")
_COMMENT_MAX = 120
_B_PREFIX = 8  # characters of b= shown as header.b
_FIELD_START: dict[bytes, re.Pattern[bytes]] = {}


def comment(text: str) -> str:
    """``text`` as an RFC 5322 comment, with its parentheses."""
    clean = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    clean = " ".join(clean.split())
    if len(clean) > _COMMENT_MAX:
        clean = clean[: _COMMENT_MAX - 3] + "..."
    escaped = clean.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})"


def value(text: str) -> str:
    """A property value: as is when it is a token, else a quoted string."""
    if _TOKEN.fullmatch(text):
        return text
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _resinfo(method: str, result: str, note: str, props: Sequence[tuple[str, str]]) -> str:
    parts = [f"{method}={result}"]
    if note:
        parts.append(comment(note))
    parts.extend(f"{name}={value(v)}" for name, v in props if v)
    return " ".join(parts)


def spf_resinfo(spf: SpfResult) -> str:
    if spf.reason:
        note = spf.reason
    elif spf.mechanism == "default":
        note = "no mechanism matched"
    elif spf.mechanism:
        note = f"{spf.mechanism} matched"
    else:
        note = ""
    if spf.result == "fail" and spf.explanation:
        note = f"{note}: {spf.explanation}" if note else spf.explanation
    domain = spf.domain
    prop = ("smtp.helo", domain) if spf.identity == "helo" else ("smtp.mailfrom", domain)
    return _resinfo("spf", spf.result, note, [prop])


def dkim_resinfo(verdict: DkimVerdict) -> str:
    props = [
        ("header.d", verdict.domain),
        ("header.s", verdict.selector),
        ("header.a", verdict.algorithm),
        ("header.b", verdict.b_prefix[:_B_PREFIX]),
    ]
    return _resinfo("dkim", verdict.result, verdict.reason, props)


def dmarc_resinfo(dmarc: DmarcResult, note: str = "") -> str:
    """``note`` (e.g. a local override) is added to the comment."""
    words: list[str] = []
    if dmarc.policy:
        words.append(f"p={dmarc.policy.upper()}")
        if dmarc.result == "fail":
            words.append(f"dis={dmarc.disposition.upper()}")
    text = " ".join(words)
    extra = [r for r in (dmarc.reason if dmarc.result != "pass" else "", note) if r]
    if extra:
        text = "; ".join([text, *extra]) if text else "; ".join(extra)
    return _resinfo("dmarc", dmarc.result, text, [("header.from", dmarc.from_domain)])


def arc_resinfo(arc: ArcVerdict) -> str:
    words = []
    if arc.instance:
        words.append(f"i={arc.instance}")
    if arc.sealer:
        words.append(f"d={arc.sealer}")
    text = " ".join(words)
    if arc.reason:
        text = f"{text}; {arc.reason}" if text else arc.reason
    return _resinfo("arc", arc.result, text, [])


def format_field(authserv_id: str, resinfos: Sequence[str]) -> bytes:
    """``Authentication-Results: <id>; <resinfo>; ...`` folded, with CRLF."""
    if not resinfos:
        resinfos = ["none"]
    lines = [f"{HEADER}: {authserv_id};"]
    for i, info in enumerate(resinfos):
        words = info.split(" ")
        if i < len(resinfos) - 1:
            words[-1] += ";"
        line = "\t" + words[0]
        for word in words[1:]:
            if _TAB_WIDTH - 1 + len(line) + 1 + len(word) > WIDTH:
                lines.append(line)
                line = "\t" + word
            else:
                line += " " + word
        lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


def authentication_results(
    authserv_id: str,
    *,
    spf: SpfResult | None = None,
    dkim: Sequence[DkimVerdict] | None = None,
    dmarc: DmarcResult | None = None,
    arc: ArcVerdict | None = None,
    dmarc_note: str = "",
    spf_helo: SpfResult | None = None,
) -> bytes:
    """The whole field for the results given; ``dkim=[]`` (no signatures) gives dkim=none.
    ``spf_helo`` is the separate check of the HELO name, written after ``spf``."""
    infos: list[str] = []
    if spf is not None:
        infos.append(spf_resinfo(spf))
    if spf_helo is not None:
        infos.append(spf_resinfo(spf_helo))
    if dkim is not None:
        infos.extend(dkim_resinfo(v) for v in dkim)
        if not dkim:
            infos.append("dkim=none")
    if dmarc is not None:
        infos.append(dmarc_resinfo(dmarc, dmarc_note))
    if arc is not None:
        infos.append(arc_resinfo(arc))
    return format_field(authserv_id, infos)


def authserv_id_of(field_text: str) -> str:
    """The authserv-id at the start of an Authentication-Results value (comments skipped)."""
    text = re.sub(r"\((?:[^()\\]|\\.)*\)", " ", field_text)
    head = text.split(";", 1)[0].strip()
    return head.split()[0].strip('"').lower() if head else ""


def remove_fields(
    message: bytes, drop: Callable[[bytes, bytes], bool], name: bytes | None = None
) -> bytes:
    """``message`` without the header fields for which ``drop(name, value)`` is true (name
    lower case, value unfolded); the rest of the message is unchanged byte for byte. With
    ``name``, a message without a field of that name is returned at once, unparsed."""
    head, body = split_message(message)
    if name is not None and not _has_field(head, name):
        return message
    fields = header_fields(head)
    kept = [f for f in fields if not drop(field_name(f), field_value(f))]
    if len(kept) == len(fields):
        return message
    if not kept:
        return b"\r\n" + body
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


def _has_field(head: bytes, name: bytes) -> bool:
    pattern = _FIELD_START.get(name)
    if pattern is None:
        pattern = re.compile(rb"(?:^|\n)" + re.escape(name) + rb"[ \t]*:", re.I)
        _FIELD_START[name] = pattern
    return pattern.search(head) is not None


def remove_our_results(message: bytes, authserv_id: str) -> bytes:
    """Drop incoming Authentication-Results fields that claim to be ours (RFC 8601 5)."""
    ours = authserv_id.lower()
    name = HEADER.lower().encode()

    def forged(field: bytes, text: bytes) -> bool:
        return field == name and authserv_id_of(text.decode("utf-8", "replace")) == ours

    return remove_fields(message, forged, name)
