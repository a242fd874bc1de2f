"""LIST pattern matching without backtracking, and UID filtering by ranges with bisect."""

from __future__ import annotations

import random
import re
import time

import pytest

from hayate.imap.listpattern import ListPattern
from hayate.imap.uidranges import in_ranges, merged


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("*", "a/b/c", True),
    ("%", "a/b", False),
    ("%", "a", True),
    ("a/%", "a/b", True),
    ("a/%", "a/b/c", False),
    ("a/*", "a/b/c", True),
    ("a%c", "abbc", True),
    ("a%c", "ab/c", False),
    ("a*c", "ab/c", True),
    ("", "", True),
    ("", "a", False),
    ("inbox", "INBOX", True),
    ("Inbox/%", "INBOX/Sub", True),
    ("inboxes", "INBOX", False),
    ("%*%", "x/y", True),
    ("%%", "x/y", False),
    ("a.b", "axb", False),
    ("a[b]", "a[b]", True),
])
def test_matches(pattern: str, name: str, expected: bool) -> None:
    assert ListPattern(pattern).match(name) is expected


def _reference(pattern: str, name: str) -> bool:
    head, sep, rest = pattern.partition("/")
    if head.upper() == "INBOX":
        pattern = "INBOX" + sep + rest
    regex = "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c)
                    for c in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


def test_agrees_with_a_regular_expression_on_random_input() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        pattern = "".join(rng.choice("ab/*%") for _ in range(rng.randint(0, 7)))
        name = "".join(rng.choice("ab/") for _ in range(rng.randint(0, 8)))
        assert ListPattern(pattern).match(name) == _reference(pattern, name), (pattern, name)


def test_many_stars_on_a_long_name_take_linear_time() -> None:
    started = time.perf_counter()
    pattern = ListPattern("*a" * 500 + "*b")
    for _ in range(100):
        assert not pattern.match("a" * 1000)
    assert time.perf_counter() - started < 1.0


def test_in_ranges_keeps_the_uids_inside_and_their_order() -> None:
    assert in_ranges([9, 1, 5, 12, 3], [(10, 12), (3, 5), (4, 6)]) == [5, 12, 3]
    assert in_ranges([1, 2], []) == []
    assert merged([(5, 6), (1, 2), (3, 3), (9, 9)]) == [(1, 3), (5, 6), (9, 9)]
    assert merged([(4, 8), (1, 3), (6, 7)]) == [(1, 8)]


def test_in_ranges_is_fast_for_many_tombstones_and_ranges() -> None:
    tombstones = list(range(1, 40_001, 2))  # 20k
    ranges = [(n, n) for n in range(2, 40_002, 4)] + [(39_001, 39_999)]  # 10k
    started = time.perf_counter()
    kept = in_ranges(tombstones, ranges)
    assert time.perf_counter() - started < 0.5
    assert kept == list(range(39_001, 40_000, 2))
