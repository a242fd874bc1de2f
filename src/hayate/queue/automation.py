"""Reply automation: rules that read a remote's replies and slow down or pause one path.

A *path* is one (egress source, site) pair; the scheduler keeps one :class:`PathGovernor`
per path (``Shaping.governor(site)`` builds it with the rules that apply to that site) and
feeds it every reply the remote sends on that path, including the reply made up for a
connection that failed.

A :class:`Rule` matches a reply by its codes and/or a regular expression on its text:

- ``codes`` — any of them must match (an empty list matches every code). An entry without
  a dot is a basic reply code or its prefix ("421", or "4" for every 4xx); an entry with dots
  is an enhanced status code compared component by component ("4.7.0"; "4.7" for every
  4.7.x; "x" is a wildcard component: "4.x.1").
- ``match`` — searched (not anchored) in the reply text, case-insensitively.
- When both are given both must match. Replies 2xx and 3xx are never looked at.
- ``threshold``/``window`` — fire only once ``threshold`` matching replies arrived within
  ``window`` seconds (default: the first one fires), for replies that speak of one
  recipient rather than of the sender, like Gmail's "450 4.2.1 receiving mail at a rate".

The first matching rule fires (the governor's rules are ordered most specific first: site,
provider, then global rules). Its *effect* lasts ``duration`` seconds from the last time it
fired, then disappears on its own:

- ``suspend`` — no new delivery on the path until the effect ends;
- ``slow`` — rates (messages per minute/hour, new connections per minute) and the number of
  connections at once are multiplied by ``factor``; ``max_connections`` additionally caps
  the connections at once ("too many connections" → ``factor = 1.0, max_connections = 1``).

Several effects at once combine to the strictest: the latest suspension end, the smallest
factor, the smallest cap. :meth:`PathGovernor.state` reports them as a :class:`PathState`
(shown by ``hayate queue sites``); :meth:`PathGovernor.apply` turns a site's configured
:class:`~hayate.queue.shaping.Limits` into the limits to use now. Suspension is not part of
the limits: the scheduler checks ``state(now).suspended_until``.

Time is passed in by the caller (seconds, any monotonic or wall clock), so tests drive it
with a fake clock.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hayate.queue.shaping import Limits

Action = Literal["suspend", "slow"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BASIC_CODE = re.compile(r"[1-5]\d{0,2}")
_ENHANCED_CODE = re.compile(r"[245](?:\.(?:\d{1,3}|x)){1,2}")
_ENHANCED_IN_TEXT = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")
_MAX_TEXT = 2000  # characters of a reply the rules look at
_MAX_REASON = 200


def parse_duration(value: str | float) -> float:
    """ "90s", "30m", "1h30m", "2d", "250ms" or a number of seconds → seconds (> 0).

    Raises ValueError with a readable message.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        if not _DURATION.fullmatch(text):
            raise ValueError(f'not a duration: {value!r} (use e.g. "90s", "30m", "1h30m", "2d")')
        seconds = sum(
            float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
            for part in _DURATION_PART.finditer(text)
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be more than zero, got {value!r}")
    return seconds


def check_code_pattern(entry: str) -> str:
    """Validate one ``codes`` entry; returns it (lower case). Raises ValueError."""
    entry = entry.strip().lower()
    if _BASIC_CODE.fullmatch(entry) or _ENHANCED_CODE.fullmatch(entry):
        return entry
    raise ValueError(
        f"not a reply code or enhanced status prefix: {entry!r} "
        '(e.g. "421", "4", "4.7.0", "4.7", "5.x.1")'
    )


def _enhanced_matches(pattern: str, enhanced: str) -> bool:
    want = pattern.split(".")
    have = enhanced.split(".")
    if len(have) < len(want):
        return False
    return all(w in ("x", h) for w, h in zip(want, have, strict=False))


@dataclass(frozen=True, slots=True)
class Rule:
    """One automation rule, validated (see the module docstring for the meaning)."""

    label: str  # where it comes from, for logs: "gmail rule 1", "global rule 2", or its name
    action: Action
    duration: float  # seconds the effect lasts after the rule last fired
    codes: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    factor: float = 1.0  # for "slow": multiplies rates and connections
    max_connections: int | None = None  # for "slow": a cap on connections at once
    threshold: int = 1  # matching replies needed ...
    window: float = 300.0  # ... within this many seconds

    def matches(self, code: int, enhanced: str, text: str) -> bool:
        if self.codes:
            basic = str(code)
            hit = False
            for entry in self.codes:
                if "." in entry:
                    if enhanced and _enhanced_matches(entry, enhanced):
                        hit = True
                        break
                elif basic.startswith(entry):
                    hit = True
                    break
            if not hit:
                return False
        return self.pattern is None or self.pattern.search(text) is not None

    def describe(self) -> str:
        if self.action == "suspend":
            return f"suspend for {_fmt_seconds(self.duration)}"
        parts = []
        if self.factor != 1.0:
            parts.append(f"rates x{self.factor:g}")
        if self.max_connections is not None:
            parts.append(f"max {self.max_connections} connection(s)")
        return f"slow ({', '.join(parts) or 'no change'}) for {_fmt_seconds(self.duration)}"


def _fmt_seconds(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class PathState:
    suspended_until: float  # 0: not suspended
    rate_factor: float  # 1.0 normal; 0.5 = half the configured rates
    max_connections: int | None  # a temporary cap, or None
    reason: str  # the rule and the reply that triggered it ("" when normal)


NORMAL = PathState(suspended_until=0.0, rate_factor=1.0, max_connections=None, reason="")


@dataclass(slots=True)
class _Effect:
    until: float
    reason: str


@dataclass(slots=True)
class PathGovernor:
    """The automation state of one (egress source, site) path."""

    rules: Sequence[Rule]
    _effects: dict[int, _Effect] = field(default_factory=dict)
    _hits: dict[int, deque[float]] = field(default_factory=dict)

    def on_reply(self, code: int, enhanced: str, text: str, now: float) -> str | None:
        """Feed one reply of this path; returns a log line when a rule fired."""
        if 200 <= code < 400 or not self.rules:
            return None
        text = text[:_MAX_TEXT]
        if not enhanced:
            found = _ENHANCED_IN_TEXT.match(text)
            enhanced = found.group(1) if found else ""
        for index, rule in enumerate(self.rules):
            if not rule.matches(code, enhanced, text):
                continue
            if rule.threshold > 1 and not self._count(index, rule, now):
                return None
            reply = " ".join(p for p in (str(code) if code else "", enhanced, text) if p)
            reply = " ".join(reply.split())[:_MAX_REASON]
            reason = f'{rule.label}: {rule.describe()} after "{reply}"'
            self._effects[index] = _Effect(until=now + rule.duration, reason=reason)
            return reason
        return None

    def _count(self, index: int, rule: Rule, now: float) -> bool:
        hits = self._hits.setdefault(index, deque())
        hits.append(now)
        while hits and hits[0] <= now - rule.window:
            hits.popleft()
        if len(hits) >= rule.threshold:
            hits.clear()
            return True
        return False

    def state(self, now: float) -> PathState:
        """The effects in force at ``now``; expired ones are forgotten."""
        if not self._effects:
            return NORMAL
        suspended_until, factor, cap = 0.0, 1.0, None
        reasons = []
        for index in sorted(self._effects):
            effect = self._effects[index]
            if effect.until <= now:
                del self._effects[index]
                continue
            rule = self.rules[index]
            reasons.append(effect.reason)
            if rule.action == "suspend":
                suspended_until = max(suspended_until, effect.until)
            else:
                factor = min(factor, rule.factor)
                if rule.max_connections is not None:
                    cap = rule.max_connections if cap is None else min(cap, rule.max_connections)
        if not reasons:
            return NORMAL
        return PathState(suspended_until, factor, cap, "; ".join(reasons))

    def apply(self, limits: Limits, now: float) -> Limits:
        """``limits`` reduced by the effects in force (the same object when there are none).

        Suspension is not expressed here (connections stay >= 1): check
        ``state(now).suspended_until``.
        """
        current = self.state(now)
        if current.rate_factor == 1.0 and current.max_connections is None:
            return limits
        f = current.rate_factor
        connections = max(1, math.floor(limits.connections * f))
        if current.max_connections is not None:
            connections = min(connections, current.max_connections)
        return replace(
            limits,
            connections=connections,
            messages_per_minute=_scaled(limits.messages_per_minute, f),
            messages_per_hour=_scaled(limits.messages_per_hour, f),
            connections_per_minute=_scaled(limits.connections_per_minute, f),
        )


def _scaled(rate: float | None, factor: float) -> float | None:
    return None if rate is None else rate * factor
