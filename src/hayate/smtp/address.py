"""Syntax of the MAIL FROM / RCPT TO arguments: the path in angle brackets and ESMTP parameters.

Pure functions over ``str``. ``split_path`` cuts ``FROM:<path> PARAMS`` into the address and the
parameter words; ``valid_address`` checks RFC 5321 mailbox syntax (dot-atom or quoted local part,
host name or address literal), extended to UTF-8 (RFC 6531) when the transaction uses SMTPUTF8;
``parse_params`` turns ``KEY=VALUE`` words into a dict. Any failure is reported as ``None`` or a
:class:`ParamError`; the protocol machine picks the reply.
"""

from __future__ import annotations

import ipaddress
import re

MAX_LOCAL = 64
MAX_DOMAIN = 255
MAX_PATH = 256

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_UTF8 = "\u0080-\U0010ffff"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_ULABEL = rf"[A-Za-z0-9{_UTF8}](?:[A-Za-z0-9\-{_UTF8}]{{0,61}}[A-Za-z0-9{_UTF8}])?"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'
_QUOTED_U = rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_UTF8}]|\\[\x20-\x7e])*"'

_LOCAL_ASCII = re.compile(rf"(?:[{_ATEXT}]+(?:\.[{_ATEXT}]+)*|{_QUOTED})")
_LOCAL_UTF8 = re.compile(rf"(?:[{_ATEXT}{_UTF8}]+(?:\.[{_ATEXT}{_UTF8}]+)*|{_QUOTED_U})")
_DOMAIN_ASCII = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DOMAIN_UTF8 = re.compile(rf"{_ULABEL}(?:\.{_ULABEL})*")
_ESMTP_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*")


class ParamError(ValueError):
    """A malformed ESMTP parameter word (``=`` without keyword, a duplicate, bad characters)."""


def _closing_bracket(text: str) -> int:
    """Index of the ``>`` that closes a path starting at ``text[0] == '<'``, or -1.

    Quoted local parts may contain ``>`` and escaped quotes, so those are skipped.
    """
    if '"' not in text:
        return text.find(">")
    quoted = False
    escaped = False
    for i in range(1, len(text)):
        ch = text[i]
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ">" and not quoted:
            return i
    return -1


def split_path(arg: str, keyword: str) -> tuple[str, list[str]] | None:
    """Split ``FROM:<a@b> SIZE=1`` (keyword ``FROM:``) into ``("a@b", ["SIZE=1"])``.

    The keyword is case-insensitive and a space after the colon is tolerated. A path without
    angle brackets is accepted (like Postfix) when it is a single word. A source route
    (``<@relay:user@host>``) is dropped. Returns None when the shape is wrong.
    """
    n = len(keyword)
    if arg[:n].upper() != keyword:
        return None
    rest = arg[n:].lstrip(" ")
    if rest.startswith("<"):
        end = _closing_bracket(rest)
        if end < 0:
            return None
        path = rest[1:end]
        tail = rest[end + 1 :]
        if tail and tail[0] != " ":
            return None
    else:
        path, _, tail = rest.partition(" ")
        if not path or "<" in path or ">" in path:
            return None
    if path.startswith("@"):
        colon = path.find(":")
        if colon < 0:
            return None
        path = path[colon + 1 :]
    return path, tail.split()


def valid_address(address: str, utf8: bool = False) -> bool:
    """True when ``address`` is ``local@domain`` with RFC 5321 (or RFC 6531) syntax."""
    if len(address) > MAX_PATH:
        return False
    at = address.rfind("@")
    if at <= 0:
        return False
    local = address[:at]
    domain = address[at + 1 :]
    if len(local.encode("utf-8")) > MAX_LOCAL and not local.startswith('"'):
        return False
    local_re = _LOCAL_UTF8 if utf8 else _LOCAL_ASCII
    if local_re.fullmatch(local) is None:
        return False
    return valid_domain(domain, utf8)


def valid_domain(domain: str, utf8: bool = False) -> bool:
    """A host name (labels of letters, digits, hyphens) or an address literal ``[…]``."""
    if not domain or len(domain) > MAX_DOMAIN:
        return False
    if domain.startswith("["):
        if not domain.endswith("]"):
            return False
        literal = domain[1:-1]
        if literal[:5].upper() == "IPV6:":
            try:
                ipaddress.IPv6Address(literal[5:])
            except ValueError:
                return False
            return True
        try:
            ipaddress.IPv4Address(literal)
        except ValueError:
            return False
        return True
    domain_re = _DOMAIN_UTF8 if utf8 else _DOMAIN_ASCII
    return domain_re.fullmatch(domain) is not None


def parse_params(words: list[str]) -> dict[str, str | None]:
    """``["SIZE=10", "SMTPUTF8"]`` → ``{"SIZE": "10", "SMTPUTF8": None}`` (keys upper-cased).

    Raises ParamError for an invalid keyword, a value with control characters or spaces, or a
    keyword given twice.
    """
    params: dict[str, str | None] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if _ESMTP_KEYWORD.fullmatch(key) is None:
            raise ParamError(word)
        key = key.upper()
        if key in params:
            raise ParamError(word)
        if sep:
            if not value or not value.isascii() or not value.isprintable():
                raise ParamError(word)
            params[key] = value
        else:
            params[key] = None
    return params


def valid_xtext(value: str) -> bool:
    """RFC 3461 xtext: printable ASCII except ``+`` and ``=``, plus ``+XX`` hex escapes."""
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == "+":
            hexpart = value[i + 1 : i + 3]
            if len(hexpart) != 2 or any(c not in "0123456789ABCDEF" for c in hexpart):
                return False
            i += 3
            continue
        if ch == "=" or not "!" <= ch <= "~":
            return False
        i += 1
    return n > 0
