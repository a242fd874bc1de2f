"""LIST/LSUB mailbox patterns (RFC 3501 §6.3.8): ``*`` matches any characters, ``%`` any
but the hierarchy delimiter ``/``, everything else itself; a first level spelled ``inbox``
in any case means ``INBOX``.

Strategy: no backtracking. The pattern is a small automaton whose states are positions in
the pattern, kept as bits of one integer (bit-parallel simulation): each character of the
name moves every live position at once, so a match costs one step per character of the
name whatever the pattern (``*a*a*a*a*b`` against a long name included). Runs of wildcards
are collapsed first (``**`` and ``%*`` are ``*``, ``%%`` is ``%``), so one step of the
empty-match closure is enough. Patterns longer than ``MAX_PATTERN`` characters are refused
by the caller.
"""

from __future__ import annotations

SEP = "/"
MAX_PATTERN = 1024


def _collapsed(pattern: str) -> str:
    out: list[str] = []
    for char in pattern:
        if char in "*%" and out and out[-1] in "*%":
            if char == "*":
                out[-1] = "*"
            continue
        out.append(char)
    return "".join(out)


class ListPattern:
    """One compiled pattern; ``match(name)`` says whether the full name matches."""

    __slots__ = ("_accept", "_literal", "_percent", "_star", "_wild")

    def __init__(self, pattern: str) -> None:
        head, sep, rest = pattern.partition(SEP)
        if head.upper() == "INBOX":
            pattern = "INBOX" + sep + rest
        pattern = _collapsed(pattern)
        self._accept = 1 << len(pattern)
        self._star = 0
        self._percent = 0
        self._literal: dict[str, int] = {}
        for index, char in enumerate(pattern):
            bit = 1 << index
            if char == "*":
                self._star |= bit
            elif char == "%":
                self._percent |= bit
            else:
                self._literal[char] = self._literal.get(char, 0) | bit
        self._wild = self._star | self._percent

    def _closure(self, states: int) -> int:
        """Add the positions after wildcards that match the empty string."""
        return states | ((states & self._wild) << 1)

    def match(self, name: str) -> bool:
        states = self._closure(1)
        star, percent, literal = self._star, self._percent, self._literal
        for char in name:
            moved = (states & literal.get(char, 0)) << 1
            kept = states & (star if char == SEP else star | percent)
            states = self._closure(moved | kept)
            if not states:
                return False
        return bool(states & self._accept)
