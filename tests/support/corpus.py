"""Where the labelled bounce corpus lives: ``$HAYATE_BOUNCE_CORPUS``, else ``../shared``
beside the checkout, else the project's shared folder ``/work/shared`` (for clones made
elsewhere, such as CI's)."""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]


def bounce_corpus() -> Path:
    candidates = [
        os.environ.get("HAYATE_BOUNCE_CORPUS"),
        str(_CHECKOUT.parent / "shared" / "testdata" / "bounces"),
        "/work/shared/testdata/bounces",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "labels.json").is_file():
            return Path(candidate)
    return Path(candidates[1] or "")
