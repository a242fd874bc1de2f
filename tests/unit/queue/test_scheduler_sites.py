"""``hayate queue sites``: the scheduler's snapshot, written per worker and merged by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from tests.support.queue import FakeClock
from tests.unit.queue.test_scheduler_shaping import BUSY, RULE, Agent, build, put, shaping, until

from hayate.commands.sites import read_sites, sites


async def test_two_workers_are_merged_and_shown(tmp_path: Path) -> None:
    clock = FakeClock()
    agent = Agent(lambda j, r: BUSY, delay=0.001)
    spool, sched, _ = build(tmp_path, agent, clock,
                            shaping=shaping("[default]\nconnections = 2\n" + RULE))
    await sched.start()
    await put(spool, sched, clock, ["a@example.net"])
    await until(lambda: sched.active == 0)
    rows = sched.sites_snapshot(clock.now())
    await sched.stop()
    run = tmp_path / "data" / "run"
    run.mkdir(parents=True)
    (run / "sites-0.json").write_text(json.dumps(rows))  # as each worker publishes it
    other = json.loads(json.dumps(rows))
    other[0]["queued"] = {"bulk": 7}
    other[0]["sent_last_minute"] = 4
    other[0]["node_connections"] = 2  # the shared table's count, as the later worker saw it
    (run / "sites-1.json").write_text(json.dumps(other))
    merged = read_sites(run)
    assert len(merged) == 1
    row = merged[0]
    assert row["queued"] == {"bulk": 7} and row["sent_last_minute"] == 5
    assert row["suspended_until"] == clock.now() + 600
    assert row["node_connections"] == 2  # the node-wide figure, not a sum of the two

    config = tmp_path / "hayate.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    result = CliRunner().invoke(sites, ["-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["site"] == "sink.test:25"
    text = CliRunner().invoke(sites, ["-c", str(config)])
    assert text.exit_code == 0
    assert "sink.test:25" in text.output and "bulk=7" in text.output
    header, line = text.output.splitlines()[:2]
    held = header.index("HELD")
    assert line[held - 1 : held + 4].strip() == "2"  # right-aligned under its heading
    assert "suspended" in text.output and "reason:" in text.output


def test_no_workers_no_sites(tmp_path: Path) -> None:
    config = tmp_path / "hayate.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n')
    result = CliRunner().invoke(sites, ["-c", str(config)])
    assert result.exit_code == 0 and "No active sites" in result.output

