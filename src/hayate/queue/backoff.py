"""Retry timing: exponential backoff between ``min_backoff`` and ``max_backoff``, until
``lifetime`` after arrival; the last retry is moved up to the moment the message expires so
that an expired message bounces on time."""

from __future__ import annotations

from hayate.config import QueueConfig


def next_attempt(cfg: QueueConfig, arrival: float, attempts: int, now: float) -> float:
    """When to try again after the ``attempts``-th failed attempt (1 for the first)."""
    delay = min(cfg.max_backoff, cfg.min_backoff * float(2 ** max(0, min(attempts - 1, 30))))
    return min(now + delay, arrival + cfg.lifetime)


def expired(cfg: QueueConfig, arrival: float, now: float) -> bool:
    return now - arrival >= cfg.lifetime
