"""``hayate events``: the recorded delivery events, newest last, filtered.

WHEN (``--since``/``--until``) is ISO 8601 (``2025-05-01``, ``2025-05-01T12:00:00+09:00``;
no zone means UTC) or a time before now: ``30s``, ``30m``, ``1h``, ``2d``, ``1w``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Any

import click

from hayate.commands.common import CliError, config_option, load_cfg, store_call
from hayate.core.events import DeliveryEvent, EventKind

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, now: float) -> float:
    """Seconds since the epoch for an ISO 8601 time or a relative one ("2d" = 2 days ago)."""
    value = text.strip()
    match = _RELATIVE.fullmatch(value)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2).lower()]
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise CliError(
            f"not a time: {text!r} (use ISO 8601 like 2025-05-01T12:00 or 30m, 1h, 2d)"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _line(e: DeliveryEvent) -> str:
    detail = " ".join(p for p in (e.bounce_kind, e.reason, e.status, e.reply) if p)
    extra = f" relay={e.relay}" if e.relay else ""
    return (f"{_iso(e.time)} {e.kind:<12} {e.queue_id or '-':<17} <{e.recipient}>"
            f" from=<{e.sender}>{extra} {detail}".rstrip())


def _as_dict(e: DeliveryEvent) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(e, name) for name in DeliveryEvent.__slots__}
    out["kind"] = str(e.kind)
    out["time"] = _iso(e.time)
    return out


@click.command()
@click.option("--recipient", default=None, help="Only events of this recipient.")
@click.option("--since", default=None, metavar="WHEN", help="From this time (ISO 8601 or 1h, 2d).")
@click.option("--until", default=None, metavar="WHEN", help="Before this time.")
@click.option("--kind", type=click.Choice([str(k) for k in EventKind]), default=None,
              help="Only this kind of event.")
@click.option("--queue-id", default=None, help="Only events of this message.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1),
              help="At most this many (the newest).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
def events(
    recipient: str | None,
    since: str | None,
    until: str | None,
    kind: str | None,
    queue_id: str | None,
    limit: int,
    as_json: bool,
    config_path: str,
) -> None:
    """Delivery events (attempts, bounces, complaints, suppressions), oldest first."""
    cfg = load_cfg(config_path)
    now = time.time()
    start = parse_when(since, now) if since else None
    end = parse_when(until, now) if until else None
    found: list[DeliveryEvent] = store_call(
        cfg,
        lambda s: s.query_events(recipient=recipient, since=start, until=end, kind=kind,
                                 queue_id=queue_id, limit=limit),
    )
    for e in found:
        click.echo(json.dumps(_as_dict(e), ensure_ascii=False) if as_json else _line(e))


COMMANDS = [events]
