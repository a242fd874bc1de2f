"""``hayate bounces parse FILE...`` through the real command line (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.bounces.test_parse import DSN, QMAIL


def _run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "hayate.cli", "bounces", "parse", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_prints_one_json_line_per_recipient_and_fails_at_the_end_on_a_missing_file(
    tmp_path: Path,
) -> None:
    dsn = tmp_path / "dsn.eml"
    dsn.write_bytes(DSN)
    qmail = tmp_path / "qmail.eml"
    qmail.write_bytes(QMAIL)
    missing = tmp_path / "missing.eml"
    result = _run(str(dsn), str(missing), str(qmail))
    assert result.returncode == 1
    assert str(missing) in result.stderr.decode()
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [(r["file"], r["recipient"], r["kind"]) for r in rows] == [
        (str(dsn), "alice@example.net", "hard"),
        (str(dsn), "bob@example.net", "soft"),  # a delay warning: reason "delayed"
        (str(dsn), "carol@example.net", "delivered"),
        (str(qmail), "gone@example.net", "hard"),
        (str(qmail), "full@example.net", "soft"),
    ]
    assert set(rows[0]) == {"file", "recipient", "kind", "reason", "status", "remote_reply"}
    assert rows[0]["reason"] == "user-unknown" and rows[0]["status"] == "5.1.1"
    assert (rows[1]["reason"], rows[1]["status"]) == ("delayed", "4.2.2")


def test_nothing_found_prints_unknown_with_a_null_recipient() -> None:
    result = _run("-", stdin=b"From: a@example.net\nSubject: hi\n\nhello\n")
    assert result.returncode == 0
    row = json.loads(result.stdout)
    assert row["recipient"] is None and row["kind"] == "unknown" and row["file"] == "-"
