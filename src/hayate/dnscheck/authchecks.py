"""The sender-authentication records of a domain: SPF, DKIM and DMARC.

* **SPF** (RFC 7208): exactly one ``v=spf1`` record; evaluated for each sending IP with
  the real evaluator and our HELO name (it must give ``pass``); the ``all`` ending should be
  ``-all`` or ``~all``; what one evaluation costs is counted exactly
  (:mod:`~hayate.dnscheck.spfcount`: at most 10 lookup terms, 2 void lookups, 10 MX hosts
  per ``mx``) and printed term by term. The suggested record adds ``ip4:``/``ip6:`` terms
  for the IPs that fail and keeps the rest; over a limit, it is rewritten within the limits
  (:mod:`~hayate.dnscheck.spffix`: broken terms removed, costly ones flattened).
* **DKIM** (RFC 6376): for each key of the key store, ``<selector>._domainkey.<domain>``
  must carry our public key (p= compared without blanks) while the key is active or
  published; a retired key may stay or go (informative row).
* **DMARC** (RFC 7489): one ``v=DMARC1`` record at ``_dmarc.<domain>`` with a valid p=;
  p=none and a missing rua= are warnings.
"""

from __future__ import annotations

import asyncio

from hayate.auth.dmarc import POLICIES as DMARC_POLICIES
from hayate.auth.spf import SpfResult
from hayate.auth.spf import check_spf as evaluate_spf
from hayate.core.seams import TxtResolver
from hayate.dnscheck import spfexplain
from hayate.dnscheck.results import CheckResult, Record, Status
from hayate.dnscheck.spfcount import LOOKUP_LIMIT, Term, count_lookups
from hayate.dnscheck.spffix import needs_fix, plan_fix
from hayate.dnscheck.spfrecord import (
    all_qualifier,
    redirect_target,
    spf_records,
    suggest_new,
    suggest_with,
)
from hayate.dnscheck.tags import dkim_public_key, parse_tags, tag_value
from hayate.dnscheck.target import (
    CheckTarget,
    DkimKeyInfo,
    SendingIp,
    txt_or_empty,
    versioned_txt,
)

# --- SPF ---------------------------------------------------------------------------------


async def check_spf(
    resolver: TxtResolver, target: CheckTarget, ips: list[SendingIp]
) -> list[CheckResult]:
    domain = target.domain
    records = spf_records(await txt_or_empty(resolver, domain))
    addresses = [ip.address for ip in ips]
    if not records:
        value = suggest_new(addresses) if addresses else "v=spf1 ip4:<sending IP> -all"
        return [CheckResult(
            "SPF", domain, Status.MISSING, None, value, Record(domain, "TXT", value).zone_line(),
            "no v=spf1 record: receivers cannot tell our IPs from forgeries",
        )]
    found = "\n".join(records)
    if len(records) > 1:
        value = suggest_with(records[0], addresses)
        return [CheckResult(
            "SPF", domain, Status.WRONG, found, value, Record(domain, "TXT", value).zone_line(),
            f"{len(records)} v=spf1 records: receivers treat that as a permanent error "
            "(RFC 7208 4.5); publish one and delete the others",
        )]
    record = records[0]
    problems: list[str] = []
    warnings: list[str] = []
    # The real evaluator, for mail from postmaster@domain; it never raises for DNS trouble.
    outcomes = await asyncio.gather(
        *(evaluate_spf(ip.address, f"postmaster@{domain}", ip.helo, resolver) for ip in ips)
    )
    failing = [ip.address for ip, o in zip(ips, outcomes, strict=True) if o.result != "pass"]
    for ip, outcome in zip(ips, outcomes, strict=True):
        if outcome.result != "pass":
            why = f" ({outcome.reason})" if outcome.reason else ""
            problems.append(f"{ip.address} (HELO {ip.helo}) gets {outcome.result}{why}, not pass")
    if not ips:
        problems.append("no sending IP known, so none could be checked")
    qualifier = all_qualifier(record)
    if qualifier == "+":
        warnings.append("+all lets every host on the Internet pass: use -all or ~all")
    elif qualifier == "?":
        warnings.append("?all is neutral for everyone else: use -all or ~all")
    elif qualifier is None and redirect_target(record) is None:
        warnings.append("no 'all' at the end (the default is neutral): add -all or ~all")
    count = await count_lookups(resolver, domain, record, addresses)
    problems.extend(spfexplain.problems(count))
    if count.lookups == LOOKUP_LIMIT:
        warnings.append(f"{count.lookups} DNS lookups: at the limit of {LOOKUP_LIMIT}")
    if any(t.kind == "ptr" for t in _all_terms(count.terms)):
        warnings.append("ptr is discouraged (RFC 7208 5.5): list the addresses instead")
    fix = plan_fix(domain, record, count) if needs_fix(count) else None
    base = fix.record if fix is not None else record
    status = Status.WRONG if problems else Status.WARN if warnings else Status.FOUND
    expected = suggest_with(base, failing) if (failing or warnings or fix) else record
    zone = None
    if expected != record:
        extra = fix.extra if fix is not None else ()
        zone = "\n".join(r.zone_line() for r in (Record(domain, "TXT", expected), *extra))
    lines = ["; ".join(problems + warnings)] if problems or warnings else [
        f"passes for {', '.join(_passed(ips, outcomes))}; {spfexplain.totals(count)}"
    ]
    if problems or warnings:
        lines.append(spfexplain.totals(count))
    lines.append(spfexplain.counted(count))
    if fix is not None:
        lines.append(spfexplain.fix_words(fix))
    return [CheckResult("SPF", domain, status, found, expected, zone, "\n".join(lines))]


def _passed(ips: list[SendingIp], outcomes: list[SpfResult]) -> list[str]:
    return [f"{ip.address} (after {o.lookups} lookup(s))" for ip, o in zip(ips, outcomes,
                                                                           strict=True)]


def _all_terms(terms: tuple[Term, ...]) -> list[Term]:
    out: list[Term] = []
    for term in terms:
        out.append(term)
        out.extend(_all_terms(term.inner))
    return out


# --- DKIM --------------------------------------------------------------------------------


async def check_dkim(resolver: TxtResolver, target: CheckTarget) -> list[CheckResult]:
    wildcard = f"<selector>._domainkey.{target.domain}"
    if target.dkim_error:
        return [CheckResult("DKIM", wildcard, Status.ERROR, detail=target.dkim_error)]
    if not target.dkim_keys:
        return [CheckResult(
            "DKIM", wildcard, Status.MISSING, None, "a DKIM key for this domain",
            f"hayate dkim keygen {target.domain}",
            "the key store has no key for this domain: outbound mail is not signed",
        )]
    return list(await asyncio.gather(*(_dkim_one(resolver, k) for k in target.dkim_keys)))


async def _dkim_one(resolver: TxtResolver, key: DkimKeyInfo) -> CheckResult:
    name = key.record.name
    ours = dkim_public_key(key.record.value)
    published = [t for t in await txt_or_empty(resolver, name) if dkim_public_key(t) is not None]
    keys = [dkim_public_key(t) for t in published]
    found = "\n".join(published) or None
    expected = key.record.value
    fix = key.record.zone_line()
    what = f"selector {key.selector} ({key.state})"
    if key.state == "retired":
        if ours in keys:
            return CheckResult("DKIM", name, Status.INFO, found, None, None,
                               f"{what}: still published; it may be removed", required=False)
        return CheckResult("DKIM", name, Status.INFO, found, None, None,
                           f"{what}: no longer published", required=False)
    if not published:
        return CheckResult("DKIM", name, Status.MISSING, None, expected, fix,
                           f"{what}: no key record: signatures with it cannot be verified")
    if len(published) > 1:
        return CheckResult("DKIM", name, Status.WRONG, found, expected, fix,
                           f"{what}: {len(published)} key records; publish only ours")
    if keys[0] == ours:
        return CheckResult("DKIM", name, Status.FOUND, found, expected, None,
                           f"{what}: public key matches")
    if keys[0] == "":
        return CheckResult("DKIM", name, Status.WRONG, found, expected, fix,
                           f"{what}: the published key is revoked (empty p=)")
    return CheckResult("DKIM", name, Status.WRONG, found, expected, fix,
                       f"{what}: the published p= is not our public key")


# --- DMARC -------------------------------------------------------------------------------


def suggested_dmarc(domain: str) -> str:
    return f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}; adkim=r; aspf=r"


async def check_dmarc(resolver: TxtResolver, target: CheckTarget) -> list[CheckResult]:
    domain = target.domain
    name = f"_dmarc.{domain}"
    records = await versioned_txt(resolver, name, "v=DMARC1")
    suggestion = suggested_dmarc(domain)
    if not records:
        return [CheckResult(
            "DMARC", name, Status.MISSING, None, suggestion,
            Record(name, "TXT", suggestion).zone_line(),
            "no DMARC policy: large mailbox providers expect one from bulk senders",
        )]
    found = "\n".join(records)
    if len(records) > 1:
        return [CheckResult("DMARC", name, Status.WRONG, found, suggestion,
                            Record(name, "TXT", suggestion).zone_line(),
                            f"{len(records)} DMARC records: receivers ignore them all")]
    tags = parse_tags(records[0])
    policy = tag_value(tags, "p")
    if tags[0] != ("v", "DMARC1") or policy is None or policy.lower() not in DMARC_POLICIES:
        why = ("p= is missing or not none/quarantine/reject" if tags[0] == ("v", "DMARC1")
               else "it must begin with 'v=DMARC1'")
        return [CheckResult("DMARC", name, Status.WRONG, found, suggestion,
                            Record(name, "TXT", suggestion).zone_line(),
                            f"the record does not parse: {why}")]
    warnings = []
    if policy.lower() == "none":
        warnings.append("p=none: failing mail is delivered as usual; move to p=quarantine "
                        "once the reports show only your own mail passing")
    if tag_value(tags, "rua") is None:
        warnings.append("no rua=: you receive no aggregate reports")
    pct = tag_value(tags, "pct")
    if pct is not None and pct != "100":
        warnings.append(f"pct={pct}: the policy applies to part of the failing mail only")
    if not warnings:
        return [CheckResult("DMARC", name, Status.FOUND, found, records[0], None,
                            f"p={policy.lower()}")]
    better = _improved_dmarc(tags, domain)
    return [CheckResult("DMARC", name, Status.WARN, found, better,
                        Record(name, "TXT", better).zone_line(), "; ".join(warnings))]


def _improved_dmarc(tags: list[tuple[str, str]], domain: str) -> str:
    out: list[tuple[str, str]] = []
    for tag, value in tags:
        if tag == "p" and value.lower() == "none":
            value = "quarantine"
        if tag == "pct":
            continue  # default is 100
        out.append((tag, value))
    if tag_value(out, "rua") is None:
        out.append(("rua", f"mailto:dmarc@{domain}"))
    return "; ".join(f"{tag}={value}" if tag != "v" else "v=DMARC1" for tag, value in out)
