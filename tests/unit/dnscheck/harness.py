"""Runs the DNS checks in-process against a real DNS server and a real HTTPS policy host."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.support.dnsserver import TestDnsServer, zone_text
from tests.support.dnsworld import (
    HOST,
    HOST_ZONE,
    REVERSE_ZONE,
    PolicyServer,
    good_policy,
    records_for,
    zone_body,
)

from hayate.auth.dkim_keys import DkimKeyStore
from hayate.commands.dnscheck import build_target
from hayate.config import Config
from hayate.dns.resolver import CachingResolver
from hayate.dnscheck.checks import run_checks
from hayate.dnscheck.policyfetch import fetch_policy
from hayate.dnscheck.results import CheckResult


class Env:
    """Runs every check for one domain against zones and a policy the test chose."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.store = DkimKeyStore(tmp_path / "dkim")
        self.dns: TestDnsServer | None = None
        self.policy: PolicyServer | None = None

    def records(self, domain: str) -> dict[str, str]:
        return records_for(domain, self.store)

    async def check(
        self,
        domain: str,
        records: dict[str, str],
        *,
        local: bool = True,
        egress: Iterable[dict[str, Any]] = (),
        reverse: str = REVERSE_ZONE,
        reverse_origin: str = "2.0.192.in-addr.arpa",
        host_zone: str = HOST_ZONE,
        policy: tuple[int, str, bytes] | None = None,
        servfail: Iterable[str] = (),
        trust_policy_cert: bool = True,
        hostname: str = HOST,
    ) -> list[CheckResult]:
        zones = {
            "hayate.test": zone_text(host_zone),
            reverse_origin: zone_text(reverse),
            domain: zone_text(zone_body(records)),
        }
        cfg = Config.model_validate({
            "hostname": hostname,
            "data_dir": str(self.dir),
            "local_domains": [domain] if local else [],
            "egress": {"sources": list(egress)},
        })
        target = build_target(cfg, domain)
        with TestDnsServer(zones, servfail=servfail) as dns, \
                PolicyServer(self.dir, [f"mta-sts.{domain}"]) as server:
            self.dns, self.policy = dns, server
            server.policies[f"mta-sts.{domain}"] = policy or (200, "text/plain", good_policy())
            resolver = CachingResolver([dns.address], timeout=2.0)
            fetch = functools.partial(
                fetch_policy, resolver, port=server.port,
                cafile=str(server.cafile) if trust_policy_cert else None, timeout=3.0,
            )
            return await run_checks(resolver, target, fetch, policy_port=server.port)


def row(rows: list[CheckResult], check: str, name: str | None = None) -> CheckResult:
    """The one row of ``check`` (and ``name``, when given)."""
    found = [r for r in rows if r.check == check and (name is None or r.name == name)]
    assert len(found) == 1, f"{check} {name}: {found}"
    return found[0]


def policy_row(rows: list[CheckResult]) -> CheckResult:
    """The MTA-STS policy file's row (its name is the URL)."""
    return next(r for r in rows if r.check == "MTA-STS" and r.name.startswith("https://"))
