"""The DNS lookups an SPF record costs a receiver, counted the way RFC 7208 4.6.4 counts them.

The count is the worst case: a client IP that matches no term, so every term up to ``all``
is evaluated, every ``include:`` is followed into its record, and ``redirect=`` is followed
when the record has no ``all``. That is the path receivers take for mail from an address the
record does not list, and the one that turns an over-long record into "permerror".

What is counted, per the RFC:

* **terms that cause DNS lookups** — ``include``, ``a``, ``mx``, ``ptr``, ``exists`` and the
  ``redirect`` modifier — at most 10 in one evaluation, includes and redirects recursively;
  ``ip4``, ``ip6``, ``all`` and ``exp=`` cost nothing, and terms after ``all`` are never
  evaluated (RFC 7208 5.1);
* **void lookups** — a term whose query is answered with NXDOMAIN or with no records (an
  ``a`` or ``exists`` name without addresses of the client's family, an ``mx`` domain
  without MX records, an ``include`` of a name that does not exist, a sending IP without a
  PTR name for ``ptr``) — at most 2;
* the **mx sub-limit**: each ``mx`` term may need an address lookup per MX host; more than
  10 hosts is a permerror of its own;
* the **ptr sub-limit**: only the first 10 PTR names of the client are looked at (the rest
  is ignored, not an error); ``ptr`` is also discouraged (RFC 7208 5.5).

Each term that costs lookups becomes a :class:`Term` with what it costs (nested terms of an
include listed inside it), what its queries found, and — when it can be replaced exactly by
``ip4:``/``ip6:`` terms — those networks (:mod:`~hayate.dnscheck.spffix` uses them to write
a record within the limits). A term whose name holds a macro (``exists:%{i}.bl.example``)
depends on the sender and the client: it is counted once, and not followed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from hayate.auth.spf import Mechanism, SpfSyntaxError, parse_record
from hayate.core.seams import DnsError, TxtResolver
from hayate.dnscheck.spfrecord import spf_records

LOOKUP_LIMIT = 10  # terms that cause DNS lookups, per evaluation
VOID_LIMIT = 2  # lookups answered with NXDOMAIN or no records
MX_HOST_LIMIT = 10  # address lookups one "mx" term may cause
PTR_NAME_LIMIT = 10  # PTR names of the client that are looked at
_RECORD_LIMIT = 40  # records fetched at most (huge or looping trees)


@dataclass(frozen=True, slots=True)
class Term:
    """One term that costs DNS lookups, with everything it costs."""

    text: str  # as written: "include:_spf.example.net", "mx/24", "redirect=_spf.example.net"
    kind: str  # include | a | mx | ptr | exists | redirect
    qualifier: str = "+"
    lookups: int = 1  # this term and every lookup-causing term it pulls in
    voids: int = 0  # void lookups it causes, nested ones included
    note: str = ""  # what its queries found: "3 MX hosts", "NXDOMAIN (void)", ...
    inner: tuple[Term, ...] = ()  # the costly terms of the record an include/redirect reaches
    # ip4:/ip6: terms (without qualifier) that match exactly the clients this term matches;
    # None when it cannot be replaced by addresses (macros, ptr, exists, a loop, ...)
    networks: tuple[str, ...] | None = None
    all_term: str = ""  # redirect only: the "all" of the record it reaches ("-all")
    # it gives permerror for every receiver: an include/redirect of a name without exactly
    # one SPF record, a loop, an mx with more than 10 hosts
    broken: bool = False


@dataclass(frozen=True, slots=True)
class LookupCount:
    """What one evaluation of a record costs, and the permanent errors found on the way."""

    lookups: int
    voids: int
    terms: tuple[Term, ...]  # the record's own costly terms, in evaluation order
    errors: tuple[str, ...] = ()  # reasons every receiver gets "permerror"
    ignored: tuple[str, ...] = ()  # costly terms after "all" (never evaluated, not counted)


@dataclass
class _Walk:
    """Shared by the whole walk: the resolver, the client's families, the fetch budget."""

    resolver: TxtResolver
    families: frozenset[int]
    ips: tuple[str, ...]
    fetched: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Unreachable:
    """Why an include/redirect target cannot be walked (every receiver gets permerror)."""

    note: str
    void: bool = False  # its TXT query came back NXDOMAIN or empty


@dataclass(frozen=True, slots=True)
class _RecordResult:
    terms: tuple[Term, ...]
    ignored: tuple[str, ...]
    networks: tuple[str, ...] | None  # the record's pass set as networks, when exact
    all_term: str


async def count_lookups(
    resolver: TxtResolver, domain: str, record: str, ips: Sequence[str] = ()
) -> LookupCount:
    """The worst-case cost of ``record`` (published at ``domain``) for clients like ``ips``.

    ``ips`` are the sending addresses: their families decide which address lookups can be
    void (an IPv4 client asks for A records only), and their PTR names feed ``ptr``.
    Temporary DNS failures raise :class:`DnsError` (the caller reports an error row).
    """
    families = frozenset(ipaddress.ip_address(ip).version for ip in ips) or frozenset({4})
    walk = _Walk(resolver, families, tuple(ips))
    origin = domain.lower().rstrip(".")
    result = await _record(walk, origin, record, (origin,))
    return LookupCount(
        lookups=sum(t.lookups for t in result.terms),
        voids=sum(t.voids for t in result.terms),
        terms=result.terms,
        errors=tuple(dict.fromkeys(walk.errors)),
        ignored=result.ignored,
    )


async def _record(walk: _Walk, domain: str, text: str, path: tuple[str, ...]) -> _RecordResult:
    try:
        parsed = parse_record(text)
    except SpfSyntaxError as exc:
        walk.errors.append(f"{domain}: the record does not parse ({exc})")
        return _RecordResult((), (), None, "")
    terms: list[Term] = []
    ignored: list[str] = []
    networks: list[str] | None = []
    all_term = ""
    for mechanism in parsed.mechanisms:
        if all_term:
            if mechanism.network is None and mechanism.name != "all":
                ignored.append(mechanism.text)
            continue
        if mechanism.name == "all":
            all_term = mechanism.text
            if mechanism.qualifier == "+":
                networks = None  # "+all" inside an include matches every client
            continue
        if mechanism.network is not None:
            if networks is not None and mechanism.qualifier == "+":
                networks.append(_network_term(mechanism.network))
            else:
                networks = None  # a non-pass range makes the pass set more than a union
            continue
        term = await _mechanism(walk, domain, mechanism, path)
        terms.append(term)
        if networks is not None and term.networks is not None and term.qualifier == "+":
            networks.extend(term.networks)
        else:
            networks = None
    if parsed.redirect is not None and not all_term:
        term = await _redirect(walk, domain, parsed.redirect, path)
        terms.append(term)
        if networks is not None and term.networks is not None:
            networks.extend(term.networks)
            all_term = term.all_term
        else:
            networks = None
    flat = tuple(dict.fromkeys(networks)) if networks is not None else None
    return _RecordResult(tuple(terms), tuple(ignored), flat, all_term)


async def _mechanism(walk: _Walk, domain: str, mechanism: Mechanism, path: tuple[str, ...]
                     ) -> Term:
    name, spec = mechanism.name, mechanism.spec
    base = Term(text=mechanism.text, kind=name, qualifier=mechanism.qualifier)
    if "%" in spec:
        return replace(base, note="holds a macro: depends on the sender, not followed")
    target = (spec or domain).lower().rstrip(".")
    if name == "include":
        return await _follow(walk, base, target, path)
    if name == "a":
        found = await _addresses(walk, target)
        nets = _networks(found, mechanism)
        if not _of_families(found, walk.families):
            return replace(base, voids=1, networks=nets,
                           note=f"{target}: no address for the client (void lookup)")
        return replace(base, note=f"{target}: {len(found)} address(es)", networks=nets)
    if name == "mx":
        return await _mx(walk, base, target, mechanism)
    if name == "exists":
        found = await _addresses(walk, target)
        if not _of_families(found, frozenset({4})):  # exists always asks for A
            return replace(base, voids=1, note=f"{target}: no A record (void lookup)")
        return replace(base, note=f"{target} exists: every client matches")
    return await _ptr(walk, base)


async def _redirect(walk: _Walk, domain: str, spec: str, path: tuple[str, ...]) -> Term:
    base = Term(text=f"redirect={spec}", kind="redirect")
    if "%" in spec:
        return replace(base, note="holds a macro: depends on the sender, not followed")
    return await _follow(walk, base, spec.lower().rstrip("."), path)


async def _follow(walk: _Walk, base: Term, target: str, path: tuple[str, ...]) -> Term:
    """An include or redirect: the term with the record it reaches walked inside it."""
    reached = await _reach(walk, target, path, base.text)
    if isinstance(reached, _Unreachable):
        return replace(base, voids=int(reached.void), note=reached.note, broken=True)
    inner = reached.terms
    return replace(
        base,
        lookups=1 + sum(t.lookups for t in inner),
        voids=sum(t.voids for t in inner),
        inner=inner,
        networks=reached.networks,
        all_term=reached.all_term if base.kind == "redirect" else "",
        note=_ignored_note(reached.ignored),
    )


async def _reach(walk: _Walk, target: str, path: tuple[str, ...], term: str
                 ) -> _RecordResult | _Unreachable:
    """The record ``term`` reaches, walked; or why it cannot be (also noted as an error)."""
    if target in path:
        loop = " → ".join([*path, target])
        walk.errors.append(f"{term}: a loop ({loop}): receivers run out of lookups")
        return _Unreachable(f"loop: {loop}")
    if walk.fetched >= _RECORD_LIMIT:
        return _Unreachable(f"not followed: more than {_RECORD_LIMIT} records fetched")
    walk.fetched += 1
    try:
        texts = await walk.resolver.resolve_txt(target)
    except DnsError as exc:
        if exc.temporary:
            raise
        walk.errors.append(f"{term}: {target} does not exist")
        return _Unreachable(f"{target} does not exist (void lookup)", void=True)
    records = spf_records(texts)
    if len(records) != 1:
        why = "has no SPF record" if not records else f"has {len(records)} SPF records"
        walk.errors.append(f"{term}: {target} {why}")
        return _Unreachable(f"{target} {why}", void=not texts)
    return await _record(walk, target, records[0], (*path, target))


async def _mx(walk: _Walk, base: Term, target: str, mechanism: Mechanism) -> Term:
    try:
        answer = await walk.resolver.resolve_mx(target)
    except DnsError as exc:
        if exc.temporary:
            raise
        return replace(base, voids=1, note=f"{target}: no MX record (void lookup)",
                       networks=())
    if answer.implicit or answer.null_mx or not answer.hosts:
        # RFC 7208 5.4: no fallback to the domain's own address for "mx"
        return replace(base, voids=1, note=f"{target}: no MX record (void lookup)",
                       networks=())
    # sorted: hosts of equal preference come back shuffled, a suggested record must not
    hosts = [h.host for h in sorted(answer.hosts, key=lambda h: (h.preference, h.host))]
    broken = len(hosts) > MX_HOST_LIMIT
    if broken:
        walk.errors.append(f"{base.text}: {target} has {len(hosts)} MX hosts, more than "
                           f"{MX_HOST_LIMIT} address lookups")
        note = f"{len(hosts)} MX hosts: more than {MX_HOST_LIMIT} (permerror)"
    else:
        note = (f"{len(hosts)} MX host(s): {len(hosts)} address lookup(s) of at most "
                f"{MX_HOST_LIMIT}")
    found: list[str] = []
    for host in hosts:
        found.extend(await _addresses(walk, host))
    return replace(base, note=note, networks=_networks(found, mechanism), broken=broken)


async def _ptr(walk: _Walk, base: Term) -> Term:
    counts: list[int] = []
    for ip in walk.ips:
        try:
            counts.append(len(await walk.resolver.resolve_ptr(ip)))
        except DnsError as exc:
            if exc.temporary:
                raise
            counts.append(0)
    notes = ["discouraged (RFC 7208 5.5): slow, and it depends on the client's PTR names"]
    voids = 0
    if counts and min(counts) == 0:
        voids = 1
        notes.append("a sending IP has no PTR name (void lookup)")
    if counts and max(counts) > PTR_NAME_LIMIT:
        notes.append(f"{max(counts)} PTR names: only the first {PTR_NAME_LIMIT} are checked")
    return replace(base, voids=voids, note="; ".join(notes))


async def _addresses(walk: _Walk, name: str) -> list[str]:
    try:
        return await walk.resolver.resolve_addresses(name)
    except DnsError as exc:
        if exc.temporary:
            raise
        return []


def _of_families(addresses: Iterable[str], families: frozenset[int]) -> bool:
    """Does every family the clients use have an address (else a client's query is void)?"""
    present = {ipaddress.ip_address(a).version for a in addresses}
    return families <= present


def _networks(addresses: Iterable[str], mechanism: Mechanism) -> tuple[str, ...]:
    out: list[str] = []
    for text in addresses:
        address = ipaddress.ip_address(text)
        bits = mechanism.cidr4 if address.version == 4 else mechanism.cidr6
        out.append(_network_term(ipaddress.ip_network(f"{address}/{bits}", strict=False)))
    return tuple(dict.fromkeys(out))


def _network_term(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    whole = network.prefixlen == network.max_prefixlen
    value = network.network_address.compressed if whole else network.compressed
    return f"ip{network.version}:{value}"


def _ignored_note(ignored: tuple[str, ...]) -> str:
    return f"after its all (never evaluated): {' '.join(ignored)}" if ignored else ""
