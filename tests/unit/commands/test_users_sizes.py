"""The size syntax of ``hayate user quota`` / ``add --quota`` and how sizes are shown."""

from __future__ import annotations

import pytest

from hayate.commands.users import format_size, parse_size, usage
from hayate.store.base import Account


@pytest.mark.parametrize(
    ("text", "size"),
    [("500M", 500 * 1024**2), ("2G", 2 * 1024**3), ("1024K", 1024**2), ("1048576", 1048576),
     ("0", 0), ("none", 0), ("NONE", 0), ("unlimited", 0), ("500mb", 500 * 1024**2),
     ("500MiB", 500 * 1024**2), (" 1.5G ", 3 * 1024**3 // 2), ("1T", 1024**4), ("12B", 12),
     ("3 M", 3 * 1024**2)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "5X", "-1", "M", "1.5", "1e6", "2GG", "10 gigabytes",
                                  "2000P", "99999999T"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_format_size_and_usage() -> None:
    assert [format_size(n) for n in (0, 512, 1024, 1536, 500 * 1024**2, 3 * 1024**3 // 2)] == [
        "0B", "512B", "1K", "1.5K", "500M", "1.5G"]
    assert usage(Account("a@b.c", 0.0, quota_bytes=1000 * 1024, used_bytes=512 * 1024)) == (
        "512K of 1000K (51.2%)")
    assert usage(Account("a@b.c", 0.0, used_bytes=2048)) == "2K (no quota)"
