"""``hayate dns check`` as a user runs it: the installed command, a config file, a real DNS
server on 127.0.0.1 and a real HTTPS host for the MTA-STS policy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
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
from tests.support.hayate_server import render_config

from hayate.auth.dkim_keys import DkimKeyStore

D = "example.test"
_SCRIPT = Path(sys.executable).parent / "hayate"


def hayate(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "hayate.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)


class World:
    def __init__(self, tmp_path: Path, dns: TestDnsServer, policy: PolicyServer) -> None:
        self.dir, self.dns, self.policy = tmp_path, dns, policy
        self.store = DkimKeyStore(tmp_path / "data" / "dkim")
        self.config = tmp_path / "hayate.toml"
        self.config.write_text(render_config(
            {"hostname": HOST, "data_dir": "data", "local_domains": [D]},
            {"dns": {"nameservers": [dns.address], "timeout": 3.0}},
            [],
        ))

    def check(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return hayate("dns", "check", D, "-c", str(self.config),
                      "--policy-port", str(self.policy.port),
                      "--policy-ca", str(self.policy.cafile), *extra)

    def publish(self, records: dict[str, str]) -> None:
        self.dns.set_zone(D, zone_text(zone_body(records)))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    zones = {
        "hayate.test": zone_text(HOST_ZONE),
        "2.0.192.in-addr.arpa": zone_text(REVERSE_ZONE),
        D: zone_text(""),
    }
    with TestDnsServer(zones) as dns, PolicyServer(tmp_path, [f"mta-sts.{D}"]) as policy:
        policy.policies[f"mta-sts.{D}"] = (200, "text/plain", good_policy())
        yield World(tmp_path, dns, policy)


def lines_of(output: str, check: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(check + " ")]


def test_a_complete_domain_exits_0_with_everything_found(world: World) -> None:
    world.publish(records_for(D, world.store))
    result = world.check()
    assert result.returncode == 0, result.stdout + result.stderr
    heads = [line for line in result.stdout.splitlines() if re.match(r"^[A-Z][\w-]* +[A-Z]", line)]
    assert len(heads) == 10
    assert all(re.match(r"^\S+ +FOUND ", line) for line in heads), heads
    assert lines_of(result.stdout, "SPF") == ["SPF       FOUND   example.test"]
    assert "everything required is in place" in result.stdout
    assert "publish:" not in result.stdout


def test_broken_records_exit_1_with_the_record_to_publish(world: World) -> None:
    records = records_for(D, world.store)
    del records["spf"]
    del records["dmarc"]
    records["tlsrpt"] = ""
    world.publish(records)
    result = world.check()
    assert result.returncode == 1
    out = result.stdout
    assert lines_of(out, "SPF") == ["SPF       MISSING example.test"]
    assert lines_of(out, "DMARC") == ["DMARC     MISSING _dmarc.example.test"]
    assert lines_of(out, "TLS-RPT") == ["TLS-RPT   MISSING _smtp._tls.example.test"]
    assert lines_of(out, "DKIM") == ["DKIM      FOUND   s1._domainkey.example.test"]
    assert 'publish: example.test. IN TXT "v=spf1 ip4:192.0.2.10 -all"' in out
    assert ('publish: _dmarc.example.test. IN TXT "v=DMARC1; p=quarantine; '
            'rua=mailto:dmarc@example.test; adkim=r; aspf=r"') in out
    assert "something required is missing or wrong" in out

    as_json = world.check("--json")
    assert as_json.returncode == 1
    objects: list[dict[str, Any]] = json.loads(as_json.stdout)
    spf = [o for o in objects if o["check"] == "SPF"]
    assert spf == [{
        "check": "SPF", "name": D, "status": "missing", "found": None,
        "expected": "v=spf1 ip4:192.0.2.10 -all",
        "fix": 'example.test. IN TXT "v=spf1 ip4:192.0.2.10 -all"',
        "detail": spf[0]["detail"], "required": True,
    }]
    assert {o["check"] for o in objects if o["status"] != "found"} == {"SPF", "DMARC", "TLS-RPT"}
    assert set(objects[0]) >= {"check", "name", "status", "found", "expected", "fix"}


def test_publishing_every_suggested_fix_makes_an_empty_domain_pass(tmp_path: Path) -> None:
    """Start from nothing; paste what the command says; the second run is clean."""
    zones = {
        "hayate.test": zone_text("mx A 127.0.0.1"),
        "127.in-addr.arpa": zone_text("1.0.0 PTR mx.hayate.test."),
        D: zone_text(""),
    }
    with TestDnsServer(zones) as dns, PolicyServer(tmp_path, [f"mta-sts.{D}"]) as policy:
        w = World(tmp_path, dns, policy)
        w.store.generate(D, "rsa", "s1", bits=2048)
        first = w.check("--json")
        assert first.returncode == 1
        objects = json.loads(first.stdout)
        failing = {o["check"] for o in objects if o["status"] != "found"}
        assert failing == {"MX", "SPF", "DKIM", "DMARC", "MTA-STS", "TLS-RPT"}
        zone_lines = []
        for o in objects:
            for line in (o["fix"] or "").split("\n"):
                zone_lines.extend(re.findall(r"(\S+\. IN [A-Z]+ .*?)(?: or an A record|\)?:?$)",
                                             line))
        dns.set_zone(D, zone_text("\n".join(zone_lines)))
        file = next(o for o in objects if o["name"].startswith("https://"))["expected"]
        policy.policies[f"mta-sts.{D}"] = (200, "text/plain", file.encode())
        second = w.check()
        assert second.returncode == 0, second.stdout
        assert "MISSING" not in second.stdout and "WRONG" not in second.stdout


def test_a_bad_config_or_domain_is_a_readable_error(tmp_path: Path) -> None:
    config = tmp_path / "hayate.toml"
    config.write_text('hostname = "mx.hayate.test"\n[dns]\nnameservers = "x"\n')
    result = hayate("dns", "check", D, "-c", str(config))
    assert result.returncode == 1
    assert "dns.nameservers" in result.stderr and "Traceback" not in result.stderr
    config.write_text('hostname = "mx.hayate.test"\n')
    result = hayate("dns", "check", "not a domain", "-c", str(config))
    assert result.returncode == 1
    assert "not a domain name" in result.stderr or "not a valid domain" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_spf_record_over_the_lookup_limit_gets_its_count_and_a_fix_that_works(
    world: World,
) -> None:
    """Four includes of providers that cost 3 lookups each: 12. The command says so term by
    term and prints a record within the limit; published, it passes."""
    records = records_for(D, world.store)
    providers = []
    for p in range(4):
        body = " ".join(f"ip4:203.0.{p}.{i}" for i in range(3))
        providers += [f'p{p} TXT "v=spf1 {body} include:more.p{p}.{D} ~all"',
                      f'more.p{p} TXT "v=spf1 a:host.p{p}.{D} ~all"',
                      f"host.p{p} A 203.0.{p}.200"]
    includes = " ".join(f"include:p{p}.{D}" for p in range(4))
    records["spf"] = f'@ TXT "v=spf1 ip4:192.0.2.10 {includes} -all"\n' + "\n".join(providers)
    world.publish(records)
    result = world.check()
    assert result.returncode == 1
    out = result.stdout
    assert lines_of(out, "SPF") == ["SPF       WRONG   example.test"]
    assert "12 DNS lookups: more than 10 is a permanent error" in out
    assert "12 of at most 10 DNS lookups, 0 of at most 2 void" in out
    assert "include:p3.example.test 3 [include:more.p3.example.test 2 [a:host.p3" in out
    assert "fix: replace include:p0.example.test by the addresses they stand for" in out
    fix = next(line for line in out.splitlines() if "publish:" in line and "v=spf1" in line)
    zone_line = fix.split("publish:", 1)[1].strip()
    assert zone_line == (
        'example.test. IN TXT "v=spf1 ip4:192.0.2.10 ip4:203.0.0.0 ip4:203.0.0.1 ip4:203.0.0.2 '
        'ip4:203.0.0.200 include:p1.example.test include:p2.example.test '
        'include:p3.example.test -all"')

    records["spf"] = "@ TXT " + zone_line.split(" IN TXT ", 1)[1] + "\n" + "\n".join(providers)
    world.publish(records)
    again = world.check("--json")
    assert again.returncode == 0, again.stdout
    [spf] = [o for o in json.loads(again.stdout) if o["check"] == "SPF"]
    assert spf["status"] == "found" and spf["fix"] is None
    assert "9 of at most 10 DNS lookups, 0 of at most 2 void" in spf["detail"]
    assert "192.0.2.10 (after 0 lookup(s))" in spf["detail"]
