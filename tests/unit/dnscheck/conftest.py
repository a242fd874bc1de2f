"""Fixtures for the DNS check tests: a real DNS server, an HTTPS policy host, DKIM keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.dnscheck.harness import Env


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)
