"""Organizational domains (RFC 7489 3.2): the registered name under a public suffix.

``sub.mail.example.co.uk`` → ``example.co.uk``. The public suffix list is the copy bundled with
the ``publicsuffixlist`` package (no network access); it is parsed once, on first use, and
includes the private section (so ``alice.github.io`` is its own organization). A name under
no known suffix falls under the default rule ("*": the last label is a suffix), which makes
``a.b.example.test`` → ``example.test``. A name that is itself a public suffix is its own
organizational domain.
"""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList


@functools.cache
def _list() -> PublicSuffixList:
    return PublicSuffixList()


@functools.lru_cache(maxsize=4096)
def organizational_domain(domain: str) -> str:
    """The organizational domain of ``domain`` (lower case, no trailing dot)."""
    name = domain.strip().rstrip(".").lower()
    if not name:
        return name
    private = _list().privatesuffix(name)
    return private if isinstance(private, str) else name


def aligned(a: str, b: str, mode: str) -> bool:
    """DMARC identifier alignment: "s" (strict) needs equal names, "r" (relaxed) equal
    organizational domains."""
    left, right = a.rstrip(".").lower(), b.rstrip(".").lower()
    if not left or not right:
        return False
    if left == right:
        return True
    return mode != "s" and organizational_domain(left) == organizational_domain(right)
