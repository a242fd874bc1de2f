"""Where :class:`~hayate.core.ratelimit.FailureLimiter` used to live; it moved to
``hayate.core.ratelimit`` so the IMAP and POP3 login guard can share it. Import it from there."""

from __future__ import annotations

from hayate.core.ratelimit import FailureLimiter

__all__ = ["FailureLimiter"]
