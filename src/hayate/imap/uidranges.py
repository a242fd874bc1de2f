"""Which of many UIDs fall in a set of UID ranges, without a scan of every range per UID
(QRESYNC's VANISHED (EARLIER) filters tens of thousands of tombstones by the client's
known UIDs or the FETCH's UID set).

Strategy: sort and merge the ranges once, then binary-search each UID's range by its lower
bound: O((uids + ranges) · log ranges).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable


def merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ranges (each ``low <= high``) sorted, with overlapping and adjacent ones joined."""
    out: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            if high > out[-1][1]:
                out[-1] = (out[-1][0], high)
        else:
            out.append((low, high))
    return out


def in_ranges(uids: Iterable[int], ranges: Iterable[tuple[int, int]]) -> list[int]:
    """The UIDs (in their order) that lie in one of ``ranges``."""
    spans = merged(ranges)
    if not spans:
        return []
    lows = [low for low, _ in spans]
    highs = [high for _, high in spans]
    out: list[int] = []
    for uid in uids:
        index = bisect_right(lows, uid) - 1
        if index >= 0 and uid <= highs[index]:
            out.append(uid)
    return out
