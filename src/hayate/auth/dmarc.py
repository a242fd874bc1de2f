"""DMARC (RFC 7489): does the From domain's policy accept this message's SPF and DKIM results?

Steps, each a function that can be used alone:

* :func:`author_domains` — the RFC5322.From domain(s). **Our choice for odd From fields**
  (RFC 7489 6.6.1 leaves it to the receiver): no From at all is "permerror" with no policy
  applied (nothing to check against, the message is recorded, not refused); several From
  fields or several addresses are checked *each*, and the strictest outcome wins (a failing
  ``p=reject`` domain among them refuses the message), so adding a second From cannot hide a
  spoofed one.
* :func:`discover_policy` — the ``_dmarc`` TXT record at the From domain, else at its
  organizational domain (:mod:`hayate.auth.orgdomain`), where ``sp=`` then applies. No record,
  several records or an unusable one mean "none"; a temporary DNS failure means "temperror".
* :func:`parse_record` — tags v, p, sp, adkim, aspf, pct, rua, ruf, fo. A record whose p= is
  missing or bad counts as p=none when it has a rua= (RFC 7489 6.6.3), else as no record.
* :func:`evaluate` — alignment (relaxed: same organizational domain; strict: same name) of
  the SPF identity (MAIL FROM, or HELO for a null sender) and of the d= of every passing DKIM
  signature. Neither aligned → "fail"; but when an aligned identifier only had a temporary
  error, "temperror" (temporary DNS trouble never gets mail refused).
* **pct** sampling is deterministic: :func:`sample_of` hashes a key (the Message-ID and the
  domain) to 0..99; a message outside the sample is handled one step softer (reject →
  quarantine → none, RFC 7489 6.6.4). ``DmarcResult.disposition`` is what to apply.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hayate.auth.canon import field_name, field_value, header_fields, split_message, to_crlf
from hayate.auth.orgdomain import aligned, organizational_domain
from hayate.auth.spf import SpfResult
from hayate.auth.verdicts import DkimVerdict
from hayate.core.seams import DnsError, TxtResolver

POLICIES = ("none", "quarantine", "reject")
_VERSION = re.compile(r"^\s*v\s*=\s*DMARC1\s*(;|$)", re.I)
_SIMPLE_FROM = re.compile(r'^[^<>,"()@\\:;]*<?[^\s<>,"()@\\:;]+@([^\s<>,"()@\\:;\[\]]+)>?\s*$')
_URI = re.compile(r"^\s*[a-z][a-z0-9+.-]*:", re.I)
_SOFTER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """A parsed ``v=DMARC1`` record."""

    policy: str  # p=: "none" | "quarantine" | "reject"
    subdomain_policy: str  # sp= (defaults to p=)
    adkim: str = "r"  # "r" relaxed | "s" strict
    aspf: str = "r"
    pct: int = 100  # 0..100: share of failing mail the policy applies to
    rua: tuple[str, ...] = ()  # aggregate report URIs
    ruf: tuple[str, ...] = ()  # failure report URIs
    fo: str = "0"  # failure reporting options


@dataclass(frozen=True, slots=True)
class DmarcResult:
    """The DMARC outcome for one message."""

    result: str  # "pass" | "fail" | "none" | "temperror" | "permerror"
    from_domain: str = ""  # header.from
    policy: str = ""  # the requested policy (p=, or sp= for a subdomain); "" without a record
    disposition: str = "none"  # what to apply after pct: "none" | "quarantine" | "reject"
    record_domain: str = ""  # where the record was found (the From or organizational domain)
    spf_aligned: bool = False
    dkim_aligned: bool = False
    reason: str = ""  # for the header comment and the log
    record: DmarcRecord | None = None


class FromFieldError(ValueError):
    """The message has no usable From field."""


# -- the record ---------------------------------------------------------------------------


def _uris(value: str) -> tuple[str, ...]:
    return tuple(u.strip() for u in value.split(",") if _URI.match(u))


def parse_record(text: str) -> DmarcRecord | None:
    """The record, or None when it is not a usable DMARC record."""
    if not _VERSION.match(text):
        return None
    tags: dict[str, str] = {}
    for part in text.split(";")[1:]:
        name, eq, value = part.partition("=")
        if eq:
            tags.setdefault(name.strip().lower(), value.strip())
    rua = _uris(tags.get("rua", ""))
    policy = tags.get("p", "").lower()
    if policy not in POLICIES:
        if not rua:
            return None
        policy = "none"
    sub = tags.get("sp", "").lower()
    pct_text = tags.get("pct", "100")
    pct = int(pct_text) if pct_text.isdigit() and int(pct_text) <= 100 else 100
    return DmarcRecord(
        policy=policy,
        subdomain_policy=sub if sub in POLICIES else policy,
        adkim="s" if tags.get("adkim", "r").lower() == "s" else "r",
        aspf="s" if tags.get("aspf", "r").lower() == "s" else "r",
        pct=pct,
        rua=rua,
        ruf=_uris(tags.get("ruf", "")),
        fo=tags.get("fo", "0") or "0",
    )


async def _records_at(name: str, resolver: TxtResolver) -> list[str]:
    try:
        texts = await resolver.resolve_txt(name)
    except DnsError as exc:
        if exc.temporary:
            raise
        return []
    return [t for t in texts if _VERSION.match(t)]


async def discover_policy(domain: str, resolver: TxtResolver) -> tuple[DmarcRecord | None, str]:
    """(record, the domain it was found at); (None, "") without one. Raises a temporary
    DnsError when DNS could not answer."""
    domain = domain.rstrip(".").lower()
    where = domain
    found = await _records_at(f"_dmarc.{domain}", resolver)
    if not found:
        org = organizational_domain(domain)
        if org == domain:
            return None, ""
        where = org
        found = await _records_at(f"_dmarc.{org}", resolver)
    if len(found) != 1:
        return None, ""
    record = parse_record(found[0])
    return (record, where) if record is not None else (None, "")


# -- the From field -----------------------------------------------------------------------


def _header_values(message: bytes) -> dict[bytes, list[str]]:
    """Unfolded values of the From and Message-ID fields, in order."""
    head, _ = split_message(to_crlf(message))
    found: dict[bytes, list[str]] = {b"from": [], b"message-id": []}
    for f in header_fields(head):
        values = found.get(field_name(f))
        if values is not None:
            values.append(field_value(f).decode("utf-8", "replace"))
    return found


def from_domains(fields: list[str]) -> list[str]:
    """The distinct domains (lower case, in order) of the addresses in the unfolded From
    field values ``fields``; raises FromFieldError without any. Shared with the DKIM signer."""
    if not fields:
        raise FromFieldError("no From header field")
    if len(fields) == 1:  # the common "Name <local@domain>" without a full parse
        simple = _SIMPLE_FROM.match(fields[0])
        if simple is not None:
            return [simple.group(1).rstrip(".").lower()]
    domains: list[str] = []
    for _, address in email.utils.getaddresses(fields):
        local, at, domain = address.rpartition("@")
        domain = domain.strip().rstrip(".").lower()
        if not at or not local or not domain:
            continue
        if domain not in domains:
            domains.append(domain)
    if not domains:
        raise FromFieldError("no address with a domain in From")
    return domains


def author_domains(message: bytes) -> list[str]:
    """The distinct From domains (lower case, in order); raises FromFieldError without any."""
    return from_domains(_header_values(message)[b"from"])


# -- evaluation ---------------------------------------------------------------------------


def sample_of(key: str) -> int:
    """A number 0..99 fixed by ``key``: the pct= sample a message falls in."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "replace")).digest()[:4]) % 100


def evaluate(
    from_domain: str,
    record: DmarcRecord | None,
    record_domain: str,
    spf: SpfResult | None,
    dkim: Sequence[DkimVerdict],
    sample: int = 0,
) -> DmarcResult:
    """The DMARC result for ``from_domain`` given its (discovered) record; pure."""
    if record is None:
        return DmarcResult("none", from_domain, reason="no DMARC record")
    policy = record.policy if record_domain == from_domain else record.subdomain_policy
    spf_aligned = (
        spf is not None and spf.result == "pass" and aligned(spf.domain, from_domain, record.aspf)
    )
    dkim_aligned = any(
        v.result == "pass" and aligned(v.domain, from_domain, record.adkim) for v in dkim
    )
    base = DmarcResult("pass", from_domain, policy, "none", record_domain, spf_aligned,
                       dkim_aligned, record=record)
    if spf_aligned or dkim_aligned:
        return base
    pending: list[str] = []
    spf_pending = spf is not None and spf.result == "temperror"
    if spf_pending and spf is not None and aligned(spf.domain, from_domain, record.aspf):
        pending.append("spf temperror")
    for v in dkim:
        if v.result == "temperror" and aligned(v.domain, from_domain, record.adkim):
            pending.append(f"dkim {v.domain} temperror")
    if pending:
        return replace(base, result="temperror", reason=", ".join(pending))
    disposition = policy if sample < record.pct else _SOFTER[policy]
    reason = "no aligned SPF or DKIM pass"
    if disposition != policy:
        reason += f"; outside pct={record.pct}"
    return replace(base, result="fail", disposition=disposition, reason=reason)


_RANK = {"reject": 3, "quarantine": 2, "none": 1}


def _strictest(results: list[DmarcResult]) -> DmarcResult:
    fails = [r for r in results if r.result == "fail"]
    if fails:
        return max(fails, key=lambda r: _RANK[r.disposition])
    for wanted in ("temperror", "pass"):
        for r in results:
            if r.result == wanted:
                return r
    return results[0]


async def check_dmarc(
    message: bytes,
    spf: SpfResult | None,
    dkim: Sequence[DkimVerdict],
    resolver: TxtResolver,
    *,
    sample_key: str | None = None,
) -> DmarcResult:
    """Check the message's From domain(s); never raises for DNS or header problems."""
    values = _header_values(message)
    try:
        domains = from_domains(values[b"from"])
    except FromFieldError as exc:
        return DmarcResult("permerror", reason=str(exc))
    ids = values[b"message-id"]
    key = (ids[0].strip() if ids else "") if sample_key is None else sample_key
    results: list[DmarcResult] = []
    for domain in domains:
        try:
            record, where = await discover_policy(domain, resolver)
        except DnsError as exc:
            results.append(DmarcResult("temperror", domain, reason=str(exc)))
            continue
        results.append(evaluate(domain, record, where, spf, dkim, sample_of(f"{key} {domain}")))
    return _strictest(results)
