"""The transport-security records of a domain: MTA-STS (RFC 8461) and TLS-RPT (RFC 8460).

* ``_mta-sts.<domain>`` TXT: one ``v=STSv1; id=...`` record (id: 1-32 letters and digits).
* the policy at ``https://mta-sts.<domain>/.well-known/mta-sts.txt``: fetched for real,
  status 200, ``text/plain``, version STSv1, a mode, an ``mx:`` line covering every MX host,
  a max_age; ``testing``/``none`` modes and a max_age under a day are warnings.
* ``_smtp._tls.<domain>`` TXT: ``v=TLSRPTv1; rua=mailto:...`` (or https:).

Missing records come with both things to publish: the TXT line and the policy file.
"""

from __future__ import annotations

import re

from hayate.core.seams import TxtResolver
from hayate.dnscheck.policyfetch import PolicyFetchError, policy_url
from hayate.dnscheck.results import CheckResult, Record, Status
from hayate.dnscheck.tags import mx_pattern_matches, parse_sts_policy, parse_tags, tag_value
from hayate.dnscheck.target import CheckTarget, PolicyFetcher, versioned_txt

SUGGESTED_MAX_AGE = 604_800  # one week
MIN_COMFORTABLE_AGE = 86_400  # below a day, a policy gives little protection
_STS_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


def suggested_policy(mx_hosts: list[str]) -> str:
    lines = ["version: STSv1", "mode: enforce"]
    lines.extend(f"mx: {host}" for host in mx_hosts)
    lines.append(f"max_age: {SUGGESTED_MAX_AGE}")
    return "\n".join(lines) + "\n"


async def check_mta_sts(
    resolver: TxtResolver,
    target: CheckTarget,
    mx_hosts: list[str],
    fetch: PolicyFetcher,
    *,
    port: int = 443,
) -> list[CheckResult]:
    hosts = list(mx_hosts)
    if (target.local or not hosts) and target.hostname not in hosts:
        hosts.insert(0, target.hostname)  # a local domain's MX must become this server
    return [
        await _sts_record(resolver, target),
        await _sts_policy(target, hosts, fetch, port),
    ]


async def _sts_record(resolver: TxtResolver, target: CheckTarget) -> CheckResult:
    name = f"_mta-sts.{target.domain}"
    records = await versioned_txt(resolver, name, "v=STSv1")
    suggestion = f"v=STSv1; id={target.sts_id}"
    fix = Record(name, "TXT", suggestion).zone_line()
    if not records:
        return CheckResult("MTA-STS", name, Status.MISSING, None, suggestion, fix,
                           "no MTA-STS record: senders cannot require TLS to your MX")
    found = "\n".join(records)
    if len(records) > 1:
        return CheckResult("MTA-STS", name, Status.WRONG, found, suggestion, fix,
                           f"{len(records)} records: senders ignore them all")
    tags = parse_tags(records[0])
    policy_id = tag_value(tags, "id")
    if tags[0] != ("v", "STSv1"):
        return CheckResult("MTA-STS", name, Status.WRONG, found, suggestion, fix,
                           "it must begin with 'v=STSv1'")
    if policy_id is None or not _STS_ID.match(policy_id):
        return CheckResult("MTA-STS", name, Status.WRONG, found, suggestion, fix,
                           "id= must be 1 to 32 letters and digits (change it on every "
                           "policy change)")
    return CheckResult("MTA-STS", name, Status.FOUND, found, records[0], None,
                       f"policy id {policy_id}")


async def _sts_policy(
    target: CheckTarget, mx_hosts: list[str], fetch: PolicyFetcher, port: int
) -> CheckResult:
    url = policy_url(target.domain, port)
    expected = suggested_policy(mx_hosts)
    host = f"mta-sts.{target.domain}"
    how = (f"serve this file at {url} over HTTPS with a certificate valid for {host} "
           f"(and publish {Record(host, 'CNAME', target.hostname + '.').zone_line()} "
           "or an A record for it):\n" + expected)
    try:
        response = await fetch(target.domain)
    except PolicyFetchError as exc:
        text = str(exc)
        status = Status.MISSING if "does not resolve" in text else Status.WRONG
        return CheckResult("MTA-STS", url, status, None, expected, how,
                           f"cannot fetch the policy: {text}")
    body = response.body.strip()
    if response.status == 404:
        return CheckResult("MTA-STS", url, Status.MISSING, None, expected, how,
                           "the policy file is not there (HTTP 404)")
    if response.status != 200:
        return CheckResult("MTA-STS", url, Status.WRONG, body[:200] or None, expected, how,
                           f"HTTP status {response.status}, not 200 (redirects are not "
                           "followed, RFC 8461 3.3)")
    problems: list[str] = []
    warnings: list[str] = []
    ctype = response.content_type.split(";", 1)[0].strip().lower()
    if ctype != "text/plain":
        problems.append(f"media type is {response.content_type or 'not given'!r}, "
                        "not text/plain")
    policy = parse_sts_policy(response.body)
    problems.extend(policy.problems)
    if policy.mode in ("enforce", "testing"):
        for mx in mx_hosts:
            if not any(mx_pattern_matches(p, mx) for p in policy.mx):
                problems.append(f"MX host {mx} matches no mx: line (mail to it would fail "
                                "in enforce mode)")
    if policy.mode == "testing":
        warnings.append("mode testing: failures are only reported; use enforce once the "
                        "TLS reports are clean")
    elif policy.mode == "none":
        warnings.append("mode none: the policy is switched off")
    if policy.max_age is not None and policy.max_age < MIN_COMFORTABLE_AGE:
        warnings.append(f"max_age {policy.max_age} is under a day; a week or more is usual")
    status = Status.WRONG if problems else Status.WARN if warnings else Status.FOUND
    detail = "; ".join(problems + warnings) or (
        f"mode {policy.mode}, max_age {policy.max_age}, mx {', '.join(policy.mx)}"
    )
    fix = how if status != Status.FOUND else None
    return CheckResult("MTA-STS", url, status, body, expected, fix, detail)


def suggested_tlsrpt(domain: str) -> str:
    return f"v=TLSRPTv1; rua=mailto:tlsrpt@{domain}"


async def check_tls_rpt(resolver: TxtResolver, target: CheckTarget) -> list[CheckResult]:
    name = f"_smtp._tls.{target.domain}"
    records = await versioned_txt(resolver, name, "v=TLSRPTv1")
    suggestion = suggested_tlsrpt(target.domain)
    fix = Record(name, "TXT", suggestion).zone_line()
    if not records:
        return [CheckResult("TLS-RPT", name, Status.MISSING, None, suggestion, fix,
                            "no TLS-RPT record: you hear nothing about TLS failures to "
                            "your MX")]
    found = "\n".join(records)
    if len(records) > 1:
        return [CheckResult("TLS-RPT", name, Status.WRONG, found, suggestion, fix,
                            f"{len(records)} records: senders ignore them all")]
    tags = parse_tags(records[0])
    rua = tag_value(tags, "rua") or ""
    uris = [u.strip() for u in rua.split(",") if u.strip()]
    if tags[0] != ("v", "TLSRPTv1"):
        why = "it must begin with 'v=TLSRPTv1'"
    elif not uris:
        why = "rua= is missing: reports have nowhere to go"
    elif not all(u.lower().startswith(("mailto:", "https:")) for u in uris):
        why = "rua= must list mailto: or https: addresses"
    else:
        return [CheckResult("TLS-RPT", name, Status.FOUND, found, records[0], None,
                            f"reports to {', '.join(uris)}")]
    return [CheckResult("TLS-RPT", name, Status.WRONG, found, suggestion, fix, why)]
