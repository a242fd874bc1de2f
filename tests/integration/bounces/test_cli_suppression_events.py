"""``hayate suppression ...`` and ``hayate events`` on a real config and store."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.support.hayate_server import ROOT, render_config

from hayate.cli import main
from hayate.commands.common import CliError
from hayate.commands.events import parse_when
from hayate.core.events import DeliveryEvent, EventKind
from hayate.store.sqlite import SqliteStore


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hayate.toml"
    path.write_text(render_config({"data_dir": "data", "local_domains": ["example.com"]}, {}, []))
    return path


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "-c", str(config)])
    return result.exit_code, result.output


def test_suppression_add_list_check_remove(config: Path) -> None:
    code, out = run(config, "suppression", "add", "Bob@Example.net", "amy@example.net",
                    "--domain", "example.com", "--reason", "asked us")
    assert code == 0, out
    assert "suppressed: bob@example.net for example.com" in out
    code, out = run(config, "suppression", "add", "bob@example.net", "--domain", "example.com")
    assert "already suppressed" in out
    assert run(config, "suppression", "add", "eve@example.org")[0] == 0  # "*" by default
    code, out = run(config, "suppression", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["domain"], r["address"], r["source"]) for r in rows] == [
        ("*", "eve@example.org", "manual"),
        ("example.com", "amy@example.net", "manual"),
        ("example.com", "bob@example.net", "manual"),
    ]
    assert rows[1]["reason"] == "asked us"
    code, out = run(config, "suppression", "list", "--domain", "example.com")
    assert len(out.splitlines()) == 2 and "bob@example.net" in out
    code, out = run(config, "suppression", "check", "eve@example.org", "--domain", "any.example")
    assert code == 0 and "suppressed: eve@example.org for *" in out
    code, out = run(config, "suppression", "check", "bob@example.net", "--domain", "other.example")
    assert code == 1 and "not suppressed" in out
    code, out = run(config, "suppression", "remove", "bob@example.net", "nobody@example.net")
    assert code == 1 and "removed: bob@example.net (1 entry)" in out
    assert "not suppressed: nobody@example.net" in out
    code, out = run(config, "suppression", "add", "not-an-address")
    assert code == 1 and "exactly one '@'" in out


def _seed_events(config: Path) -> float:
    now = time.time()

    async def seed() -> None:
        store = SqliteStore(config.parent / "data" / "hayate.db")
        await store.create()
        await store.migrate()
        await store.insert_events([
            DeliveryEvent(now - 3 * 86400, EventKind.DELIVERED, "bob@example.net",
                          "news@example.com", "Q1", relay="mx[192.0.2.1]:25"),
            DeliveryEvent(now - 600, EventKind.DEFERRED, "bob@example.net",
                          "news@example.com", "Q2", "4.2.2", "452 4.2.2 full"),
            DeliveryEvent(now - 60, EventKind.ASYNC_BOUNCE, "bob@example.net",
                          "news@example.com", "Q2", "5.1.1", bounce_kind="hard",
                          reason="user-unknown"),
            DeliveryEvent(now - 30, EventKind.DELIVERED, "amy@example.net", queue_id="Q3"),
        ])
        await store.close()

    asyncio.run(seed())
    return now


def test_events_filters_and_json(config: Path) -> None:
    _seed_events(config)
    code, out = run(config, "events", "--recipient", "BOB@example.net", "--since", "1h")
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 2
    assert "deferred" in lines[0] and "452 4.2.2 full" in lines[0]
    assert "async-bounce" in lines[1] and "hard user-unknown 5.1.1" in lines[1]
    code, out = run(config, "events", "--kind", "async-bounce", "--json")
    [row] = [json.loads(line) for line in out.splitlines()]
    assert (row["recipient"], row["queue_id"], row["bounce_kind"]) == ("bob@example.net", "Q2",
                                                                      "hard")
    assert row["time"].endswith("Z")
    code, out = run(config, "events", "--queue-id", "Q1", "--until", "1d")
    assert "relay=mx[192.0.2.1]:25" in out and len(out.splitlines()) == 1
    code, out = run(config, "events", "--limit", "1")
    assert "amy@example.net" in out and len(out.splitlines()) == 1
    code, out = run(config, "events", "--since", "yesterday-ish")
    assert code == 1 and "not a time" in out


def test_parse_when() -> None:
    now = 1_000_000.0
    assert parse_when("30m", now) == now - 1800
    assert parse_when("2d", now) == now - 172800
    assert parse_when("1W", now) == now - 7 * 86400
    assert parse_when("1970-01-02", now) == 86400
    assert parse_when("1970-01-02T09:00:00+09:00", now) == 86400
    assert parse_when("1970-01-01T00:01:00Z", now) == 60
    with pytest.raises(CliError):
        parse_when("soon", now)


def test_the_installed_command_has_both(config: Path) -> None:
    hayate = ROOT / ".venv" / "bin" / "hayate"
    out = subprocess.run([str(hayate), "suppression", "add", "x@example.net", "-c", str(config)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert "suppressed: x@example.net for *" in out
    out = subprocess.run([str(hayate), "events", "--help"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "--recipient" in out and "--since" in out
