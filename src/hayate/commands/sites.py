"""``hayate queue sites``: the shaping state of every (egress source, site) path.

Each worker of a running server writes its paths to ``data_dir/run/sites-<index>.json``
(``Scheduler.sites_snapshot``) beside its ``worker-<index>.json``; this command merges the
workers' files: jobs queued per stream, connections open, the effective limits, what was
sent in the last minute, the governor's state (suspended until / slowed, and why) and the
warm-up allowance left today. CONN is the connections open (all workers) against the limit;
HELD is what the node's shared limit table counts for the path, which includes connections
kept idle for reuse (a worker that stops sending to a site keeps its count until its idle
connections may have closed). ``--json`` prints the merged rows as one JSON array.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from hayate.commands.common import config_option, load_cfg

STALE_AFTER = 30.0  # seconds: a file older than this belongs to a stopped worker


def read_sites(run_dir: Path, now: float | None = None) -> list[dict[str, Any]]:
    """Merge the workers' snapshots: one row per (source, site), numbers added up."""
    when = time.time() if now is None else now
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(run_dir.glob("sites-*.json")):
        try:
            if when - path.stat().st_mtime > STALE_AFTER:
                continue
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being replaced right now, or gone
        for row in rows if isinstance(rows, list) else []:
            key = (str(row.get("source", "")), str(row.get("site", "")))
            have = merged.get(key)
            if have is None:
                merged[key] = dict(row)
                continue
            _add(have, row)
    return [merged[k] for k in sorted(merged)]


def _add(have: dict[str, Any], row: dict[str, Any]) -> None:
    for field in ("connections", "sent_last_minute", "sent_total"):
        have[field] = int(have.get(field) or 0) + int(row.get(field) or 0)
    # every worker reports the node-wide count of the shared table: the newest is the largest
    have["node_connections"] = max(int(have.get("node_connections") or 0),
                                   int(row.get("node_connections") or 0))
    queued = dict(have.get("queued") or {})
    for stream, count in (row.get("queued") or {}).items():
        queued[stream] = int(queued.get(stream, 0)) + int(count)
    have["queued"] = queued
    until = [u for u in (have.get("suspended_until"), row.get("suspended_until")) if u]
    have["suspended_until"] = max(until) if until else None
    have["rate_factor"] = min(float(have.get("rate_factor") or 1.0),
                              float(row.get("rate_factor") or 1.0))
    if row.get("reason") and row["reason"] not in str(have.get("reason") or ""):
        have["reason"] = "; ".join(r for r in (have.get("reason"), row["reason"]) if r)
    left = [x for x in (have.get("warmup_remaining"), row.get("warmup_remaining"))
            if x is not None]
    have["warmup_remaining"] = min(left) if left else None


def _rate(value: object) -> str:
    return "-" if value in (None, 0) else f"{float(str(value)):g}"


def _state(row: dict[str, Any], now: float) -> str:
    until = row.get("suspended_until")
    if until:
        return f"suspended {max(0.0, float(until) - now):.0f}s"
    factor = float(row.get("rate_factor") or 1.0)
    return f"slowed x{factor:g}" if factor < 1.0 else "ok"


def format_sites(rows: list[dict[str, Any]], now: float) -> str:
    if not rows:
        return "No active sites"
    head = (f"{'SOURCE':<12} {'SITE':<32} {'QUEUED':<22} {'CONN':>9} {'HELD':>5} "
            f"{'MSG/MIN':>13} {'MSG/H':>7} {'WARMUP':>6}  STATE")
    lines = [head]
    for row in rows:
        limits = row.get("limits") or {}
        queued = ",".join(f"{k}={v}" for k, v in (row.get("queued") or {}).items()) or "0"
        conn = f"{row.get('connections', 0)}/{limits.get('connections', '?')}"
        rate = f"{row.get('sent_last_minute', 0)}/{_rate(limits.get('messages_per_minute'))}"
        left = row.get("warmup_remaining")
        lines.append(
            f"{row.get('source', ''):<12} {row.get('site', ''):<32} {queued:<22} {conn:>9} "
            f"{row.get('node_connections', row.get('connections', 0)):>5} "
            f"{rate:>13} {_rate(limits.get('messages_per_hour')):>7} "
            f"{'-' if left is None else left:>6}  {_state(row, now)}"
        )
        if row.get("reason"):
            lines.append(f"{'':<12} reason: {row['reason']}")
    return "\n".join(lines)


@click.command("sites")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON array.")
@config_option
def sites(as_json: bool, config_path: str) -> None:
    """Show each (source, site) path: queued mail, connections, limits, rate, governor
    state and warm-up allowance (of a running server)."""
    cfg = load_cfg(config_path)
    now = time.time()
    rows = read_sites(cfg.data_dir / "run", now)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
    else:
        click.echo(format_sites(rows, now))
