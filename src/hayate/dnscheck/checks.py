"""All checks of ``hayate dns check`` for one domain, over a TxtResolver, in report order.

Order and dependencies: the MX check yields the MX hosts (for MTA-STS's ``mx:`` lines); the
host-address check yields the sending IPs when no egress source has an address (the host's
A/AAAA); then SPF, DKIM, DMARC, PTR/FCrDNS, MTA-STS and TLS-RPT run at once. Here live the
MX, address and PTR/FCrDNS checks; the others are in :mod:`~hayate.dnscheck.authchecks`
and :mod:`~hayate.dnscheck.stschecks`. A temporary DNS failure in a check becomes an ERROR
row for that check (the others still run).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable

import dns.reversename

from hayate.core.seams import DnsError, MxAnswer, TxtResolver
from hayate.dnscheck.authchecks import check_dkim, check_dmarc, check_spf
from hayate.dnscheck.results import CheckResult, Record, Status
from hayate.dnscheck.stschecks import check_mta_sts, check_tls_rpt
from hayate.dnscheck.target import (
    CheckTarget,
    PolicyFetcher,
    SendingIp,
    norm_host,
)


async def run_checks(
    resolver: TxtResolver,
    target: CheckTarget,
    fetch_policy: PolicyFetcher,
    *,
    policy_port: int = 443,
) -> list[CheckResult]:
    (mx_rows, mx_hosts), (address_rows, ips) = await asyncio.gather(
        check_mx(resolver, target), check_host_address(resolver, target)
    )
    domain = target.domain
    groups = await asyncio.gather(
        _guard("SPF", domain, check_spf(resolver, target, ips)),
        _guard("DKIM", f"<selector>._domainkey.{domain}", check_dkim(resolver, target)),
        _guard("DMARC", f"_dmarc.{domain}", check_dmarc(resolver, target)),
        check_ptr(resolver, ips),
        _guard("MTA-STS", f"_mta-sts.{domain}",
               check_mta_sts(resolver, target, mx_hosts, fetch_policy, port=policy_port)),
        _guard("TLS-RPT", f"_smtp._tls.{domain}", check_tls_rpt(resolver, target)),
    )
    rows = [*mx_rows, *address_rows]
    for group in groups:
        rows.extend(group)
    return rows


async def _guard(
    check: str, name: str, rows: Awaitable[list[CheckResult]]
) -> list[CheckResult]:
    try:
        return await rows
    except DnsError as exc:
        return [CheckResult(check, name, Status.ERROR, detail=f"DNS lookup failed: {exc}")]


# --- MX ----------------------------------------------------------------------------------


async def check_mx(
    resolver: TxtResolver, target: CheckTarget
) -> tuple[list[CheckResult], list[str]]:
    """The MX row, and the MX host names (explicit MX records only)."""
    domain, hostname = target.domain, norm_host(target.hostname)
    expected = Record(domain, "MX", f"10 {hostname}.")
    answer: MxAnswer | None = None
    try:
        answer = await resolver.resolve_mx(domain)
    except DnsError as exc:
        if exc.temporary:
            return [CheckResult("MX", domain, Status.ERROR, expected=expected.value,
                                detail=f"DNS lookup failed: {exc}", required=target.local)], []
    hosts = [] if answer is None or answer.implicit else [h.host for h in answer.hosts]
    found = None
    if answer is not None and answer.null_mx:
        found = "0 ."
    elif hosts and answer is not None:
        found = "\n".join(f"{h.preference} {h.host}." for h in answer.hosts)
    role = "receives mail here" if target.local else "only sends from here"
    if hostname in hosts:
        row = CheckResult("MX", domain, Status.FOUND, found, expected.value, None,
                          f"mail for {domain} comes to {hostname}", required=target.local)
    elif not target.local:
        row = CheckResult("MX", domain, Status.INFO, found, None, None,
                          f"{domain} is not a local domain (it {role}): its MX is "
                          "informative only", required=False)
    elif not hosts:
        why = "a null MX (0 .) refuses all mail" if found == "0 ." else "no MX record"
        row = CheckResult("MX", domain, Status.MISSING if found is None else Status.WRONG,
                          found, expected.value, expected.zone_line(),
                          f"{why}; {domain} is a local domain, its mail must come here")
    else:
        row = CheckResult("MX", domain, Status.WRONG, found, expected.value,
                          expected.zone_line(),
                          f"the MX hosts are not this server ({hostname})")
    return [row], hosts


# --- the host's address and the sending IPs ----------------------------------------------


async def check_host_address(
    resolver: TxtResolver, target: CheckTarget
) -> tuple[list[CheckResult], list[SendingIp]]:
    """The host name's A/AAAA row, and the IPs mail leaves from."""
    hostname = norm_host(target.hostname)
    configured = [ip for ip in target.egress if ip.address]
    # The host's address matters when it is the MX target or when it is the sending IP.
    required = target.local or not configured
    try:
        addresses = await resolver.resolve_addresses(hostname)
    except DnsError as exc:
        if exc.temporary:
            row = CheckResult("A", hostname, Status.ERROR, detail=f"DNS lookup failed: {exc}",
                              required=required)
            return [row], configured
        addresses = []
    if addresses:
        row = CheckResult("A", hostname, Status.FOUND, "\n".join(addresses), None, None,
                          f"{hostname} has an address", required=required)
    else:
        sample = configured[0].address if configured else "<this server's public IP>"
        rtype = "AAAA" if ":" in sample else "A"
        row = CheckResult(
            "A", hostname, Status.MISSING, None, sample,
            Record(hostname, rtype, sample).zone_line(),
            f"{hostname} has no A/AAAA record"
            + ("" if configured else ": the sending IPs cannot be known either"),
            required=required,
        )
    if configured:
        return [row], configured
    return [row], [SendingIp(a, hostname, "hostname") for a in addresses]


# --- PTR and forward-confirmed reverse DNS -----------------------------------------------


async def check_ptr(resolver: TxtResolver, ips: list[SendingIp]) -> list[CheckResult]:
    if not ips:
        return [CheckResult("PTR", "(sending IPs)", Status.MISSING, None, None, None,
                            "no sending IP known: give the host name an A/AAAA record "
                            "or configure [egress] sources with addresses")]
    groups = await asyncio.gather(*(_ptr_one(resolver, ip) for ip in ips))
    return [row for group in groups for row in group]


async def _ptr_one(resolver: TxtResolver, ip: SendingIp) -> list[CheckResult]:
    reverse = dns.reversename.from_address(ip.address).to_text(omit_final_dot=True)
    helo = norm_host(ip.helo)
    expected = Record(reverse, "PTR", f"{helo}.")
    provider = " (the owner of the IP sets it: ask your hosting provider)"
    try:
        names = [norm_host(n) for n in await resolver.resolve_ptr(ip.address)]
    except DnsError as exc:
        if exc.temporary:
            row = CheckResult("PTR", reverse, Status.ERROR, None, expected.value, None,
                              f"DNS lookup failed: {exc}")
            return [row, await _forward(resolver, ip, helo)]
        names = []
    if not names:
        row = CheckResult("PTR", reverse, Status.MISSING, None, expected.value,
                          expected.zone_line(), f"{ip.address} has no PTR record{provider}")
    elif helo in names:
        row = CheckResult("PTR", reverse, Status.FOUND, "\n".join(names), expected.value,
                          None, f"{ip.address} is {helo}")
    else:
        row = CheckResult("PTR", reverse, Status.WRONG, "\n".join(names), expected.value,
                          expected.zone_line(),
                          f"{ip.address} is {', '.join(names)}, but the HELO name of "
                          f"source {ip.source} is {helo}{provider}")
    return [row, await _forward(resolver, ip, helo)]


async def _forward(resolver: TxtResolver, ip: SendingIp, helo: str) -> CheckResult:
    wanted = ipaddress.ip_address(ip.address)
    rtype = "A" if wanted.version == 4 else "AAAA"
    expected = Record(helo, rtype, wanted.compressed)
    try:
        addresses = await resolver.resolve_addresses(helo)
    except DnsError as exc:
        if exc.temporary:
            return CheckResult("FCrDNS", helo, Status.ERROR, None, expected.value, None,
                               f"DNS lookup failed: {exc}")
        addresses = []
    found = "\n".join(addresses) or None
    if any(ipaddress.ip_address(a) == wanted for a in addresses):
        return CheckResult("FCrDNS", helo, Status.FOUND, found, expected.value, None,
                           f"{helo} resolves back to {ip.address}")
    if not addresses:
        return CheckResult("FCrDNS", helo, Status.MISSING, None, expected.value,
                           expected.zone_line(),
                           f"the HELO name {helo} has no address, so {ip.address} is not "
                           "forward-confirmed")
    return CheckResult("FCrDNS", helo, Status.WRONG, found, expected.value,
                       expected.zone_line(),
                       f"{helo} resolves to {', '.join(addresses)}, not to {ip.address}")
