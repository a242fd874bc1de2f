"""``hayate dns check DOMAIN``: the DNS records this server needs, found / missing / wrong.

Builds the :class:`~hayate.dnscheck.target.CheckTarget` from the config (host name, local
domains, egress sources and pools) and the DKIM key store, runs the checks through the
configured resolver, prints a table (or ``--json``) and exits 1 when anything required is
missing or wrong, so it can run from cron or CI.

Sending IPs: the egress sources of the pool ``[egress] domain_pools`` names for the domain,
else every egress source with an address, else the host name's A/AAAA records.
"""

from __future__ import annotations

import functools
import time

import click

from hayate.commands.common import CliError, config_option, load_cfg, run_async
from hayate.config import Config
from hayate.core.seams import DnsError
from hayate.dnscheck.results import CheckResult, Record
from hayate.dnscheck.target import CheckTarget, DkimKeyInfo, SendingIp


@click.group()
def dns() -> None:
    """DNS records for the domains this server sends and receives for."""


@dns.command("check")
@click.argument("domain")
@config_option
@click.option("--json", "as_json", is_flag=True, help="A JSON array: one object per check.")
@click.option("--policy-port", type=int, default=443, hidden=True,
              help="Port of the MTA-STS policy host (tests).")
@click.option("--policy-ca", type=click.Path(exists=True, dir_okay=False), default=None,
              hidden=True, help="CA file that signs the MTA-STS policy host (tests).")
def check(domain: str, config_path: str, as_json: bool, policy_port: int,
          policy_ca: str | None) -> None:
    """Check MX, SPF, DKIM, DMARC, PTR/FCrDNS, MTA-STS and TLS-RPT of DOMAIN.

    Each record is shown as FOUND, MISSING or WRONG (WARN: works but weak), with the exact
    record to publish. Exit status 1 when something required is missing or wrong.
    """
    from hayate.dnscheck.report import exit_status, render_json, render_table

    cfg = load_cfg(config_path)
    target = build_target(cfg, _domain(domain))
    rows = run_async(lambda: _run(cfg, target, policy_port, policy_ca))
    if as_json:
        click.echo(render_json(rows))
    else:
        role = "local domain" if target.local else "sending only"
        click.echo(render_table(target.domain, f"this server: {cfg.hostname}; {role}", rows))
    raise SystemExit(exit_status(rows))


def _domain(text: str) -> str:
    from hayate.dns.records import parse_name

    domain = text.strip().lower().rstrip(".")
    if "." not in domain or domain.startswith((".", "@")):
        raise CliError(f"not a domain name: {text!r}")
    try:
        parse_name(domain)
    except DnsError as exc:
        raise CliError(str(exc)) from exc
    return domain


def build_target(cfg: Config, domain: str) -> CheckTarget:
    local = domain in cfg.local_domains or domain == (cfg.bounces.domain or "").lower()
    keys, error = _dkim_keys(cfg, domain)
    return CheckTarget(
        domain=domain,
        hostname=cfg.hostname.lower().rstrip("."),
        local=local,
        egress=tuple(_egress(cfg, domain)),
        dkim_keys=tuple(keys),
        dkim_error=error,
        sts_id=time.strftime("%Y%m%d%H%M%S", time.gmtime()),
    )


def _egress(cfg: Config, domain: str) -> list[SendingIp]:
    sources = {s.name: s for s in cfg.egress.sources if s.address}
    pool_name = cfg.egress.domain_pools.get(domain)
    pools = {p.name: p for p in cfg.egress.pools}
    names = list(sources)
    if pool_name is not None and pool_name in pools:
        names = [m.source for m in pools[pool_name].sources if m.source in sources]
    out = []
    for name in names:
        source = sources[name]
        assert source.address is not None
        helo = (source.helo or cfg.hostname).lower().rstrip(".")
        out.append(SendingIp(source.address, helo, name))
    return out


def _dkim_keys(cfg: Config, domain: str) -> tuple[list[DkimKeyInfo], str]:
    from hayate.auth.dkim_keys import DkimKeyError, DkimKeyStore, dns_record

    try:
        keys = DkimKeyStore(cfg.dkim_dir).keys(domain)
    except (DkimKeyError, OSError) as exc:
        return [], f"cannot read the DKIM key store: {exc}"
    out = []
    for key in keys:
        name, value = dns_record(key)
        out.append(DkimKeyInfo(key.selector, key.state, Record(name.rstrip("."), "TXT", value)))
    return out, ""


async def _run(
    cfg: Config, target: CheckTarget, policy_port: int, policy_ca: str | None
) -> list[CheckResult]:
    from hayate.dns.resolver import CachingResolver
    from hayate.dnscheck.checks import run_checks
    from hayate.dnscheck.policyfetch import fetch_policy

    try:
        resolver = CachingResolver(
            cfg.dns.nameservers, timeout=cfg.dns.timeout, cache_size=cfg.dns.cache_size
        )
    except ValueError as exc:
        raise CliError(f"dns.nameservers: {exc}") from exc
    fetch = functools.partial(
        fetch_policy, resolver, port=policy_port, cafile=policy_ca, timeout=cfg.dns.timeout * 2
    )
    return await run_checks(resolver, target, fetch, policy_port=policy_port)


COMMANDS = [dns]
