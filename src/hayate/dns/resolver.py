"""The cached asynchronous DNS resolver that delivery (and later SPF/DKIM/DMARC) asks.

:class:`CachingResolver` implements :class:`hayate.core.seams.MxResolver` on dnspython's
asyncio stub resolver, talking to the configured nameservers ("ip" or "ip:port") or to those
of /etc/resolv.conf. Nothing here blocks the event loop.

Strategies:

* **One question, one query.** Each (name, type) is asked once; callers asking while that
  query is in flight await the same task (``_inflight``), and its outcome is cached.
* **Cache** (:class:`~hayate.dns.cache.TtlCache`, LRU, ``cache_size`` entries) of parsed
  outcomes: answers for their TTL (at most a day); NXDOMAIN and NODATA for the negative TTL
  of the SOA in the answer (RFC 2308; 300 s without an SOA; at most 3 hours); temporary
  failures for only ``failure_ttl`` seconds, so an outage does not become a query storm.
* **Error mapping** (:class:`~hayate.core.seams.DnsError`): NXDOMAIN and invalid names are
  permanent; SERVFAIL, REFUSED, timeouts and unreachable servers are temporary.
* **MX rules** (RFC 5321 5.1, RFC 7505): hosts sorted by preference, equal preferences in
  random order on every call; "0 ." is a null MX (the domain takes no mail); no MX but an
  A/AAAA is an implicit MX on the domain itself; no MX and no address is a permanent error.
  MX targets that are IP literals or CNAMEs are used anyway, with a warning in the log.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

from hayate.core.seams import Clock, DnsError, MxAnswer, MxHost, SystemClock
from hayate.dns.cache import TtlCache
from hayate.dns.records import (
    Outcome,
    address_literal,
    digest,
    host_text,
    parse_name,
    parse_nameserver,
)

log = logging.getLogger(__name__)

MAX_TTL = 86400.0  # never keep an answer longer than a day, whatever its TTL says
MAX_NEGATIVE_TTL = 10800.0  # RFC 2308 5: negative answers at most a few hours
DEFAULT_NEGATIVE_TTL = 300.0  # NXDOMAIN without an SOA to say otherwise
FAILURE_TTL = 2.0  # temporary failures are remembered this briefly
_PER_TRY = 2.0  # seconds one try may take; ``timeout`` bounds all tries of a lookup
_EDNS_PAYLOAD = 1232  # the DNS flag day 2020 UDP size; larger answers come over TCP

_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_MX = dns.rdatatype.MX
_TXT = dns.rdatatype.TXT
_PTR = dns.rdatatype.PTR

_Key = tuple[str, int]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters for metrics and tests."""

    entries: int  # outcomes in the cache now
    hits: int  # questions answered from the cache
    queries: int  # questions that went to the network
    shared: int  # questions that joined a query already in flight


class CachingResolver:
    """MX, address, TXT and PTR lookups with a TTL cache and shared in-flight queries."""

    def __init__(
        self,
        nameservers: list[str],
        timeout: float = 5.0,
        cache_size: int = 10000,
        clock: Clock | None = None,
        *,
        failure_ttl: float = FAILURE_TTL,
        rng: random.Random | None = None,
    ) -> None:
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [parse_nameserver(n) for n in nameservers]
        else:
            try:
                resolver = dns.asyncresolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration:
                log.warning("no nameservers configured and none in /etc/resolv.conf")
                resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.lifetime = timeout
        resolver.timeout = min(timeout, _PER_TRY)
        resolver.cache = None  # ours is in front of it
        resolver.use_edns(0, 0, _EDNS_PAYLOAD)
        self._resolver = resolver
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._cache: TtlCache[_Key, Outcome] = TtlCache(cache_size, self._clock)
        self._mx_targets: TtlCache[str, str] = TtlCache(cache_size, self._clock)
        self._inflight: dict[_Key, asyncio.Task[Outcome]] = {}
        self._failure_ttl = failure_ttl
        self._rng = rng if rng is not None else random.Random()
        self._hits = 0
        self._queries = 0
        self._shared = 0

    # -- the MxResolver seam --------------------------------------------------------------

    async def resolve_mx(self, domain: str) -> MxAnswer:
        """The hosts to try for mail to ``domain``, in order; raises DnsError."""
        if domain.startswith("["):  # an address literal: user@[192.0.2.1]
            literal = address_literal(domain)
            if literal is not None:
                return MxAnswer(domain, (MxHost(0, literal),), implicit=True)
        name, text = parse_name(domain)
        outcome = await self._lookup(name, text, _MX)
        outcome.check()
        if outcome.null_mx:
            return MxAnswer(text, (), null_mx=True)
        if outcome.mx:
            return MxAnswer(text, self._shuffle_ties(outcome) if outcome.mx_ties else outcome.mx)
        try:
            await self._addresses(name, text)
        except DnsError as exc:
            if exc.temporary:
                raise
            raise DnsError(f"{text}: no MX and no A/AAAA record", temporary=False) from exc
        return MxAnswer(text, (MxHost(0, text),), implicit=True)

    async def resolve_addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of ``host`` (an IP literal is its own answer)."""
        literal = address_literal(host)
        if literal is not None:
            return [literal]
        name, text = parse_name(host)
        if text == "localhost" or text.endswith(".localhost"):
            return ["127.0.0.1"]  # RFC 6761 6.3: never asked of DNS
        return await self._addresses(name, text)

    # -- for SPF, DKIM, DMARC and FCrDNS --------------------------------------------------

    async def resolve_txt(self, name: str) -> list[str]:
        """Each TXT record of ``name`` with its strings joined; [] when it has none."""
        qname, text = parse_name(name)
        outcome = await self._lookup(qname, text, _TXT)
        outcome.check()
        return list(outcome.values)

    async def resolve_ptr(self, ip: str) -> list[str]:
        """Host names of the PTR records of ``ip``; [] when it has none."""
        literal = address_literal(ip)
        if literal is None:
            raise DnsError(f"{ip!r} is not an IP address", temporary=False)
        qname = dns.reversename.from_address(literal)
        outcome = await self._lookup(qname, host_text(qname), _PTR)
        outcome.check()
        return list(outcome.values)

    # -- housekeeping ---------------------------------------------------------------------

    def stats(self) -> CacheStats:
        return CacheStats(len(self._cache), self._hits, self._queries, self._shared)

    def clear_cache(self) -> None:
        self._cache.clear()
        self._mx_targets.clear()

    # -- internals ------------------------------------------------------------------------

    def _shuffle_ties(self, outcome: Outcome) -> tuple[MxHost, ...]:
        keyed = sorted((h.preference, self._rng.random(), h) for h in outcome.mx)
        return tuple(h for _, _, h in keyed)

    async def _addresses(self, name: dns.name.Name, text: str) -> list[str]:
        v4 = self._cached(text, _A)
        v6 = self._cached(text, _AAAA)
        if v4 is None and v6 is None:  # ask both at once
            v4, v6 = await asyncio.gather(
                self._lookup(name, text, _A), self._lookup(name, text, _AAAA)
            )
        if v4 is None:
            v4 = await self._lookup(name, text, _A)
        if v6 is None:
            v6 = await self._lookup(name, text, _AAAA)
        if v4.values or v6.values:
            return [*v4.values, *v6.values]
        for outcome in sorted((v4, v6), key=lambda o: not o.temporary):
            outcome.check()  # a temporary failure wins over NXDOMAIN: it may be transient
        raise DnsError(f"{text}: no A or AAAA record", temporary=False)

    def _cached(self, text: str, rdtype: dns.rdatatype.RdataType) -> Outcome | None:
        outcome = self._cache.get((text, int(rdtype)))
        if outcome is not None:
            self._hits += 1
        return outcome

    async def _lookup(
        self, name: dns.name.Name, text: str, rdtype: dns.rdatatype.RdataType
    ) -> Outcome:
        """The outcome for ``name`` (``text`` is its display form): cached, shared or fresh."""
        cached = self._cached(text, rdtype)
        if cached is not None:
            return cached
        key = (text, int(rdtype))
        loop = asyncio.get_running_loop()
        task = self._inflight.get(key)
        if task is not None and task.get_loop() is loop:
            self._shared += 1
        else:
            self._queries += 1
            task = loop.create_task(self._fetch(key, name, rdtype))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        # Shielded: a caller that gives up does not cancel the query for the others.
        return await asyncio.shield(task)

    def _forget(self, key: _Key, task: asyncio.Task[Outcome]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _fetch(
        self, key: _Key, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> Outcome:
        outcome, ttl = await self._query(name, rdtype)
        self._cache.put(key, outcome, ttl)
        return outcome

    async def _query(
        self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> tuple[Outcome, float]:
        """Ask the network once; never raises: an error is part of the outcome."""
        what = f"{host_text(name)}/{dns.rdatatype.to_text(rdtype)}"
        try:
            answer = await self._resolver.resolve(
                name, rdtype, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN as exc:
            message = f"{host_text(name)}: no such domain (NXDOMAIN)"
            return Outcome(error=message), _negative_ttl(exc)
        except dns.resolver.YXDOMAIN:
            return Outcome(error=f"{what}: name too long (YXDOMAIN)"), DEFAULT_NEGATIVE_TTL
        except dns.exception.Timeout:
            return self._failure(f"DNS lookup of {what} timed out")
        except (dns.exception.DNSException, OSError) as exc:  # SERVFAIL, REFUSED, unreachable
            return self._failure(f"DNS lookup of {what} failed: {exc}")
        chain = answer.chaining_result
        outcome = digest(answer.rrset if answer.rrset is not None else ())
        limit = MAX_NEGATIVE_TTL if outcome.empty else MAX_TTL
        ttl = min(float(chain.minimum_ttl), limit)
        self._note_oddities(name, rdtype, outcome, chain.canonical_name, ttl)
        return outcome, ttl

    def _failure(self, message: str) -> tuple[Outcome, float]:
        log.info("%s", message)
        return Outcome(error=message, temporary=True), self._failure_ttl

    def _note_oddities(
        self,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        outcome: Outcome,
        canonical: dns.name.Name,
        ttl: float,
    ) -> None:
        """Warn (once per fetch) about MX targets that are IP literals or CNAMEs."""
        if rdtype == _MX:
            for mx in outcome.mx:
                if address_literal(mx.host) is not None:
                    log.warning("MX of %s is an IP address (%s); using it", name, mx.host)
                self._mx_targets.put(mx.host, host_text(name), ttl)
        elif rdtype in (_A, _AAAA) and canonical != name:
            domain = self._mx_targets.get(host_text(name))
            if domain is not None:
                log.warning(
                    "MX host %s of %s is a CNAME for %s; following it",
                    host_text(name),
                    domain,
                    host_text(canonical),
                )


def _negative_ttl(exc: dns.resolver.NXDOMAIN) -> float:
    """The SOA-derived negative TTL of an NXDOMAIN (RFC 2308), or the default."""
    ttls: list[float] = []
    responses = exc.kwargs.get("responses") or {}
    for response in responses.values():
        if not isinstance(response, dns.message.QueryMessage):
            continue
        try:
            ttls.append(float(response.resolve_chaining().minimum_ttl))
        except dns.exception.DNSException:
            continue
    ttl = min(ttls) if ttls else DEFAULT_NEGATIVE_TTL
    return min(ttl, MAX_NEGATIVE_TTL)
