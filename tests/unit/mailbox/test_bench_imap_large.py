"""Smoke test of ``bench.imap_large``: the benchmark runs end to end on a small mailbox,
against a real ``hayate serve``, and every count it checks matches what it planted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.hayate import missing_hayate

ROOT = Path(__file__).resolve().parents[3]


def test_bench_imap_large_small_mailbox_reports_matching_counts(tmp_path: Path) -> None:
    assert missing_hayate() is None, missing_hayate()
    done = subprocess.run(
        [sys.executable, "-m", "bench.imap_large", "--messages", "300"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
        env={"PATH": "/usr/bin:/bin", "BENCH_TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "MISMATCH" not in out
    rows = {
        "SELECT INBOX": "300",
        "UID SEARCH UNSEEN": "15",
        'SEARCH SUBJECT "quarterly"': "6",
        'SEARCH BODY "zanzibar"': "2",
        r"UID FETCH 1:\* \(UID FLAGS\)": "300",
        r"SORT \(DATE\) UTF-8 ALL": "300",
    }
    for operation, count in rows.items():
        assert re.search(rf"^{operation}\s+[\d.]+\s+{count}\s+{count}\s", out, re.M), out
    assert "worker VmHWM" in out
    assert list(tmp_path.iterdir()) == [], "the data folder was not cleaned up"
