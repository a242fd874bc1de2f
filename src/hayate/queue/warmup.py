"""IP warm-up: daily volume caps per (egress source, provider) that ramp up over days.

A source with ``warmup = "<schedule>"`` and ``warmup_start = "YYYY-MM-DD"`` is on day
``d = today - warmup_start + 1`` of its warm-up, with days counted in ``warmup.timezone``.
On day ``d`` it may send ``schedule.daily[d - 1]`` messages to each provider (Gmail,
Outlook, ...; every destination without a provider shares one cap, "other"). Before day 1 the
cap is 0 (the address is not in service yet); after the last day there is no cap. Sources
without a schedule are never capped.

Counting is node-wide. The workers are separate processes that share ``data_dir``, so the
counts live in a small SQLite file (``data_dir/warmup.db``, WAL), one row per
(day, source, provider). The hot path never touches the file: :meth:`WarmupTracker.consume`
adds to an in-memory delta, and at most every ``warmup.sync_interval`` seconds (checked on
the next call) the deltas are added to the rows in one short transaction and the node's
totals for today are read back. Between two syncs each worker only sees its own new sends,
so the node may overshoot a cap by what the *other* workers sent in that interval — a few
messages at the rates a warming address is allowed, which is the price of a cheap hot path.
Rows older than :data:`KEEP_DAYS` are deleted.
"""

from __future__ import annotations

import datetime
import sqlite3
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

from hayate.config import ConfigError, EgressSource, WarmupConfig
from hayate.core.seams import Clock

OTHER = "other"  # the provider key of every destination without a provider
KEEP_DAYS = 60  # count rows are kept this long (for `hayate queue sites` and debugging)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS warmup_counts (
    day TEXT NOT NULL,          -- YYYY-MM-DD in warmup.timezone
    source TEXT NOT NULL,
    provider TEXT NOT NULL,
    sent INTEGER NOT NULL,
    PRIMARY KEY (day, source, provider)
) WITHOUT ROWID
"""

_ADD = """
INSERT INTO warmup_counts (day, source, provider, sent) VALUES (?, ?, ?, ?)
ON CONFLICT (day, source, provider) DO UPDATE SET sent = sent + excluded.sent
"""

_Key = tuple[str, str]  # (source, provider)


class WarmupTracker:
    """Daily caps and node-wide counts of warming sources; see the module docstring."""

    def __init__(
        self,
        cfg: WarmupConfig,
        sources: Sequence[EgressSource],
        path: Path,
        clock: Clock,
    ) -> None:
        self._tz = zoneinfo.ZoneInfo(cfg.timezone)
        self._interval = cfg.sync_interval
        self._clock = clock
        # source name → (first day, daily caps), only for sources that are warming up
        self._plans: dict[str, tuple[datetime.date, list[int]]] = {}
        for src in sources:
            if src.warmup is None:
                continue
            schedule = cfg.schedules.get(src.warmup)
            if schedule is None:
                known = ", ".join(sorted(cfg.schedules)) or "none defined"
                raise ConfigError(
                    f"egress source {src.name!r}: unknown warm-up schedule {src.warmup!r} "
                    f"(warmup.schedules: {known})"
                )
            if src.warmup_start is None:
                raise ConfigError(f"egress source {src.name!r}: warmup needs warmup_start")
            self._plans[src.name] = (datetime.date.fromisoformat(src.warmup_start), schedule.daily)
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._day = ""  # the day whose totals are loaded
        self._totals: dict[_Key, int] = {}  # node-wide, as of the last sync
        self._pending: dict[_Key, int] = {}  # ours, not written yet
        self._synced_at: float | None = None

    # -- days and caps ---------------------------------------------------------------
    def _date(self, now: float) -> datetime.date:
        return datetime.datetime.fromtimestamp(now, self._tz).date()

    def warming(self, source: str) -> bool:
        """Whether ``source`` has a warm-up schedule at all (otherwise it is never capped)."""
        return source in self._plans

    def day(self, source: str, now: float) -> int | None:
        """Day of the warm-up (1-based; 0 or less before it starts), None without a schedule."""
        plan = self._plans.get(source)
        if plan is None:
            return None
        return (self._date(now) - plan[0]).days + 1

    def cap(self, source: str, provider: str | None, now: float) -> int | None:
        """Today's cap for ``provider`` (the same for every provider); None: no cap."""
        plan = self._plans.get(source)
        if plan is None:
            return None
        day = (self._date(now) - plan[0]).days + 1
        daily = plan[1]
        if day < 1:
            return 0
        if day > len(daily):
            return None
        return daily[day - 1]

    def used(self, source: str, provider: str | None, now: float) -> int:
        """Messages sent today from ``source`` to ``provider``, node-wide (as of the last sync)."""
        if source not in self._plans:
            return 0
        self._sync_if_due(now)
        key = (source, provider or OTHER)
        return self._totals.get(key, 0) + self._pending.get(key, 0)

    def remaining(self, source: str, provider: str | None, now: float) -> int | None:
        """How many more ``source`` may send to ``provider`` today; None: no cap."""
        cap = self.cap(source, provider, now)
        if cap is None:
            return None
        return max(0, cap - self.used(source, provider, now))

    def consume(self, source: str, provider: str | None, count: int, now: float) -> None:
        """Count ``count`` messages sent from ``source`` to ``provider`` (cheap: in memory)."""
        if source not in self._plans or count <= 0:
            return
        self._sync_if_due(now)
        key = (source, provider or OTHER)
        self._pending[key] = self._pending.get(key, 0) + count

    def used_by_provider(self, source: str, now: float) -> dict[str, int]:
        """Today's node-wide counts of ``source`` per provider (for ``hayate queue sites``)."""
        if source not in self._plans:
            return {}
        self._sync_if_due(now)
        out: dict[str, int] = {}
        for counts in (self._totals, self._pending):
            for (src, provider), n in counts.items():
                if src == source:
                    out[provider] = out.get(provider, 0) + n
        return dict(sorted(out.items()))

    def next_window(self, now: float) -> float:
        """The start of the next day in ``warmup.timezone`` (epoch seconds)."""
        tomorrow = self._date(now) + datetime.timedelta(days=1)
        start = datetime.datetime.combine(tomorrow, datetime.time(0), tzinfo=self._tz)
        return start.timestamp()

    # -- the shared file -------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, timeout=10.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a lost second of counts is harmless
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def _sync_if_due(self, now: float) -> None:
        day = self._date(now).isoformat()
        last = self._synced_at
        if day != self._day or last is None or abs(now - last) >= self._interval:
            self.sync(now)

    def sync(self, now: float | None = None) -> None:
        """Write our deltas, read the node's totals for today. Called by the hot path at
        most every ``sync_interval`` seconds; call it once more before shutting down."""
        if not self._plans:
            return
        if now is None:
            now = self._clock.now()
        today = self._date(now)
        db = self._connect()
        pending = self._pending
        db.execute("BEGIN IMMEDIATE")
        try:
            if pending:
                # Deltas belong to the day they were counted on (the loaded one).
                day = self._day or today.isoformat()
                db.executemany(
                    _ADD,
                    [(day, src, prov, n) for (src, prov), n in pending.items()],
                )
            if today.isoformat() != self._day:
                oldest = (today - datetime.timedelta(days=KEEP_DAYS)).isoformat()
                db.execute("DELETE FROM warmup_counts WHERE day < ?", (oldest,))
            rows = db.execute(
                "SELECT source, provider, sent FROM warmup_counts WHERE day = ?",
                (today.isoformat(),),
            ).fetchall()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._pending = {}
        self._day = today.isoformat()
        self._totals = {(src, prov): int(n) for src, prov, n in rows}
        self._synced_at = now

    def close(self) -> None:
        """Write what is pending and close the file."""
        if self._pending:
            self.sync(self._synced_at if self._synced_at is not None else self._clock.now())
        if self._db is not None:
            self._db.close()
            self._db = None
