"""The suppression list and its rules (implements ``SuppressionList``).

Rules, per sending domain (an entry for ``*`` applies to every sending domain):

- a **hard bounce** (the address does not exist: unknown user, unknown host, moved, ...)
  suppresses the address at once (source ``hard-bounce``);
- **soft bounces** (mailbox full, suspended, expired, ...) are counted: ``soft_bounce_limit``
  of them within ``soft_bounce_window`` seconds suppress it (source ``soft-bounces``);
- a **complaint** (an ARF feedback-loop report) suppresses it (source ``complaint``);
- a **delay warning** (reason ``delayed``: the message is late, still queued somewhere) is
  not a bounce and never counts, whatever its kind says;
- a failure that is about *us* and not about the address never counts, hard or soft:
  blocks, spam or virus verdicts, policy, rate limits, relaying denied, network and system
  errors, message too big, or any ``x.7.x`` (security/policy) status unless the reason
  says the user or host is unknown. Suppressing addresses because our IP was blocked
  would throw away good recipients.
- our own delivery attempts (:meth:`SuppressionService.note_failure`, called by the
  scheduler): a permanent ``5.1.1``/``5.1.2``/``5.1.3``/``5.1.6``/``5.1.10`` (no such
  user/domain, bad address, moved, null MX) suppresses; a permanent ``5.2.2`` (mailbox
  full) counts as a soft bounce; temporary failures are retried by the queue and do not
  count (a bounce after expiry comes back through the DSN path).

Hot path: :meth:`suppressed` answers from a TTL cache (positive and negative answers, kept
``[suppression] cache_ttl`` seconds) and asks the store in one query for the recipients it
does not know. Changes made through this object update the cache at once; changes made
elsewhere (the CLI, another worker) are seen after at most ``cache_ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hayate.bounces.delay import DELAYED
from hayate.bounces.records import BounceKind, BounceRecord
from hayate.config import SuppressionConfig
from hayate.core.seams import Clock
from hayate.store.base import ANY_DOMAIN, Store

log = logging.getLogger("hayate.bounces")

# Statuses of our own attempts that prove the address (or its domain) does not exist.
ADDRESS_GONE = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10"})
MAILBOX_FULL = frozenset({"5.2.2"})
# Words in a reason category that make a bounce about the sender, not the address.
_ABOUT_SENDER = (
    "block", "spam", "virus", "policy", "security", "content", "relay", "rate", "toomany",
    "too-many", "conn", "network", "system", "mailer", "syntax", "toobig", "too-big",
    "size", "exceed", "rejected", "reputation", "auth",
)
_ADDRESS_REASONS = ("unknown", "hasmoved", "has-moved", "notaccept", "not-accept")


@dataclass(frozen=True, slots=True)
class Decision:
    """What :meth:`SuppressionService.apply` did with one bounce or complaint."""

    suppressed: bool  # the address is on the list now (new or already there)
    source: str = ""  # "hard-bounce" | "soft-bounces" | "complaint" when it counted
    soft_count: int = 0  # soft bounces inside the window, after this one


def about_sender(reason: str, status: str) -> bool:
    """Does this failure say something about us (block, policy, ...) rather than the address?"""
    text = reason.lower().replace("_", "-")
    if any(word in text for word in _ADDRESS_REASONS):
        return False
    if any(word in text for word in _ABOUT_SENDER):
        return True
    return status.startswith(("5.7.", "4.7."))


class SuppressionService:
    """The suppression list over the store, with the rules above and a TTL cache."""

    def __init__(
        self,
        store: Store,
        config: SuppressionConfig,
        clock: Clock,
        *,
        cache_size: int = 100_000,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.cache_ttl = config.cache_ttl
        self.cache_size = cache_size
        self._cache: dict[tuple[str, str], tuple[bool, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_prune = 0.0
        self.lookups = 0  # store queries made by suppressed() (for tests and metrics)

    # -- SuppressionList ----------------------------------------------------------------

    async def suppressed(self, sender_domain: str, recipients: Sequence[str]) -> set[str]:
        """Which of ``recipients`` (as given) are suppressed for ``sender_domain``."""
        domain = _domain(sender_domain)
        now = self.clock.now()
        found: set[str] = set()
        unknown: dict[str, list[str]] = {}
        for rcpt in recipients:
            key = rcpt.strip().lower()
            cached = self._cache.get((domain, key))
            if cached is not None and cached[1] > now:
                if cached[0]:
                    found.add(rcpt)
            else:
                unknown.setdefault(key, []).append(rcpt)
        if unknown:
            self.lookups += 1
            hits = await self.store.check_suppressions(domain, list(unknown))
            expires = now + self.cache_ttl
            self._make_room(len(unknown))
            for key, given in unknown.items():
                hit = key in hits
                self._cache[(domain, key)] = (hit, expires)
                if hit:
                    found.update(given)
        return found

    def note_failure(
        self, sender_domain: str, recipient: str, status: str, permanent: bool
    ) -> None:
        """Our own attempt failed; a write happens in the background when it counts."""
        if not permanent:
            return
        if status in ADDRESS_GONE:
            kind: BounceKind = "hard"
            reason = "user-unknown" if status != "5.1.2" else "host-unknown"
        elif status in MAILBOX_FULL:
            kind, reason = "soft", "mailbox-full"
        else:
            return
        record = BounceRecord(recipient=recipient, kind=kind, reason=reason, status=status)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("note_failure for <%s> outside the event loop: ignored", recipient)
            return
        task = loop.create_task(self._apply_logged(sender_domain, record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- rules --------------------------------------------------------------------------

    async def apply(self, sender_domain: str, record: BounceRecord) -> Decision:
        """Apply the rules to one bounce or complaint of mail from ``sender_domain``."""
        domain = _domain(sender_domain)
        detail = " ".join(p for p in (record.status, record.remote_reply) if p)[:500]
        if record.kind == "complaint":
            await self.store.add_suppression(
                domain, record.recipient, "complaint", "complaint", detail
            )
            return self._suppressed_now(domain, record, "complaint")
        if (
            record.kind not in ("hard", "soft")
            or record.reason == DELAYED
            or about_sender(record.reason, record.status)
        ):
            return Decision(False)
        if record.kind == "hard":
            await self.store.add_suppression(
                domain, record.recipient, record.reason, "hard-bounce", detail
            )
            return self._suppressed_now(domain, record, "hard-bounce")
        await self._prune_now_and_then()
        count, suppressed = await self.store.note_soft_bounce(
            domain,
            record.recipient,
            window=self.config.soft_bounce_window,
            limit=self.config.soft_bounce_limit,
            reason=record.reason,
            detail=detail,
        )
        if suppressed:
            return self._suppressed_now(domain, record, "soft-bounces", count)
        return Decision(False, "soft-bounces", count)

    async def drain(self) -> None:
        """Wait for the background writes started by note_failure (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def forget(self) -> None:
        """Drop the cache (after the list was changed elsewhere)."""
        self._cache.clear()

    # -- internals ----------------------------------------------------------------------

    def _suppressed_now(
        self, domain: str, record: BounceRecord, source: str, count: int = 0
    ) -> Decision:
        address = record.recipient.strip().lower()
        self._cache[(domain, address)] = (True, self.clock.now() + self.cache_ttl)
        if domain == ANY_DOMAIN:
            self._cache = {k: v for k, v in self._cache.items() if k[1] != address}
        log.info(
            "suppressed <%s> for %s: %s (%s%s)", address, domain, source, record.reason,
            f", {record.status}" if record.status else "",
        )
        return Decision(True, source, count)

    async def _apply_logged(self, sender_domain: str, record: BounceRecord) -> None:
        try:
            await self.apply(sender_domain, record)
        except Exception:
            log.exception("could not update the suppression list for <%s>", record.recipient)

    async def _prune_now_and_then(self) -> None:
        now = self.clock.now()
        if now - self._last_prune < 3600:
            return
        self._last_prune = now
        await self.store.prune_soft_bounces(now - self.config.soft_bounce_window)

    def _make_room(self, wanted: int) -> None:
        excess = len(self._cache) + wanted - self.cache_size
        if excess <= 0:
            return
        now = self.clock.now()
        self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
        excess = len(self._cache) + wanted - self.cache_size
        for key in list(self._cache)[: max(0, excess)]:  # oldest insertions first
            del self._cache[key]


def _domain(domain: str) -> str:
    value = domain.strip().lower().rstrip(".")
    return value or ANY_DOMAIN
