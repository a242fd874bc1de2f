"""How the results of ``hayate dns check`` are shown: a readable table, or JSON.

Table: one line per row (check, status, DNS name) followed by indented ``found:``,
``why:`` and ``publish:`` lines (a fix may span several lines: an MTA-STS policy file),
then a summary. JSON: an array with one object per row (``check``, ``name``, ``status``,
``found``, ``expected``, ``fix``, plus ``detail`` and ``required``). The exit status is
:func:`exit_status`: 1 when a required row is MISSING, WRONG or ERROR.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from hayate.dnscheck.results import CheckResult, Status

_LABEL = {
    Status.FOUND: "FOUND",
    Status.MISSING: "MISSING",
    Status.WRONG: "WRONG",
    Status.WARN: "WARN",
    Status.INFO: "INFO",
    Status.ERROR: "ERROR",
}
_INDENT = " " * 18


def exit_status(rows: Sequence[CheckResult]) -> int:
    return 1 if any(r.failing for r in rows) else 0


def render_json(rows: Sequence[CheckResult]) -> str:
    return json.dumps([r.as_json() for r in rows], indent=2)


def _block(label: str, text: str) -> list[str]:
    lines = text.rstrip("\n").split("\n")
    out = [f"{_INDENT}{label:<9}{lines[0]}"]
    out.extend(f"{_INDENT}{'':<9}{line}" for line in lines[1:])
    return out


def render_table(domain: str, heading: str, rows: Sequence[CheckResult]) -> str:
    out = [f"DNS check for {domain} ({heading})", ""]
    for row in rows:
        label = _LABEL[row.status]
        if not row.required and row.status.failing:
            label += "?"  # not needed for this domain: never fails the command
        out.append(f"{row.check:<8}  {label:<7} {row.name}")
        if row.found:
            out.extend(_block("found:", row.found))
        if row.detail:
            out.extend(_block("why:" if row.status != Status.FOUND else "ok:", row.detail))
        if row.fix:
            out.extend(_block("publish:", row.fix))
    counts = Counter(_LABEL[r.status].lower() for r in rows)
    summary = ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))
    verdict = ("something required is missing or wrong" if exit_status(rows)
               else "everything required is in place")
    out += ["", f"{summary}: {verdict}"]
    return "\n".join(out)
