"""The cached asynchronous DNS resolver that delivery (and later SPF/DKIM/DMARC) asks.

:class:`CachingResolver` implements :class:`hayate.core.seams.MxResolver` on dnspython's
asyncio stub resolver, talking to the configured nameservers ("ip" or "ip:port") or to those
of /etc/resolv.conf. Nothing here blocks the event loop.

Strategies:

* **One question, one query.** Each (name, type) is looked up once; callers asking while
  that query is in flight await the same task (``_inflight``), and its outcome is cached.
* **Cache** (:class:`~hayate.dns.cache.TtlCache`, LRU, ``cache_size`` entries): answers for
  their TTL (at most a day); NXDOMAIN and NODATA for the SOA minimum of the negative answer
  (RFC 2308; 300 s without an SOA; at most 3 hours); temporary failures for only
  ``failure_ttl`` seconds, so a DNS outage does not turn into a query storm.
* **Error mapping** (:class:`~hayate.core.seams.DnsError`): NXDOMAIN and invalid names are
  permanent; SERVFAIL, REFUSED, timeouts and unreachable servers are temporary.
* **MX rules** (RFC 5321 5.1, RFC 7505): hosts sorted by preference, equal preferences in
  random order; "0 ." is a null MX (the domain takes no mail); no MX but an A/AAAA is an
  implicit MX on the domain itself; no MX and no address is a permanent error. MX targets
  that are IP literals or CNAMEs are used anyway, with a warning in the log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.mxbase
import dns.rdtypes.nsbase
import dns.rdtypes.txtbase
import dns.resolver
import dns.reversename

from hayate.core.seams import Clock, DnsError, MxAnswer, MxHost, SystemClock
from hayate.dns.cache import TtlCache

log = logging.getLogger(__name__)

MAX_TTL = 86400.0  # never keep an answer longer than a day, whatever its TTL says
MAX_NEGATIVE_TTL = 10800.0  # RFC 2308 5: negative answers at most a few hours
DEFAULT_NEGATIVE_TTL = 300.0  # NXDOMAIN/NODATA without an SOA to say otherwise
FAILURE_TTL = 2.0  # temporary failures are remembered this briefly
_PER_TRY = 2.0  # seconds one try may take; ``timeout`` bounds all tries of a lookup
_EDNS_PAYLOAD = 1232  # the DNS flag day 2020 UDP size; larger answers come over TCP

_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_MX = dns.rdatatype.MX
_TXT = dns.rdatatype.TXT
_PTR = dns.rdatatype.PTR


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters for metrics and tests."""

    entries: int  # answers in the cache now
    hits: int  # lookups answered from the cache
    queries: int  # lookups that went to the network
    shared: int  # lookups that joined a query already in flight


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one (name, type) query gave: records (none = NODATA) or an error."""

    records: tuple[dns.rdata.Rdata, ...] = ()
    error: str = ""
    temporary: bool = False

    def check(self) -> None:
        if self.error:
            raise DnsError(self.error, temporary=self.temporary)


def parse_nameserver(spec: str) -> dns.nameserver.Do53Nameserver:
    """ "192.0.2.1", "192.0.2.1:5353", "2001:db8::1" or "[2001:db8::1]:5353" → a nameserver."""
    text = spec.strip()
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"bad nameserver {spec!r}: expected '[ip]:port'")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise ValueError(f"bad nameserver {spec!r}: expected 'ip:port'")
        port = int(port_text)
    else:
        host = text
    try:
        ip = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"bad nameserver {spec!r}: not an IP address") from exc
    if not 0 < port < 65536:
        raise ValueError(f"bad nameserver {spec!r}: port out of range")
    return dns.nameserver.Do53Nameserver(str(ip), port)


def address_literal(host: str) -> str | None:
    """The IP address if ``host`` is one ("192.0.2.1", "[192.0.2.1]", "[IPv6:2001:db8::1]")."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if text[:5].lower() == "ipv6:":
            text = text[5:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _host_text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


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
        self._cache: TtlCache[tuple[str, int], _Outcome] = TtlCache(cache_size, self._clock)
        self._mx_targets: TtlCache[str, str] = TtlCache(cache_size, self._clock)
        self._inflight: dict[tuple[str, int], asyncio.Task[_Outcome]] = {}
        self._failure_ttl = failure_ttl
        self._rng = rng if rng is not None else random.Random()
        self._hits = 0
        self._queries = 0
        self._shared = 0

    # -- the MxResolver seam --------------------------------------------------------------

    async def resolve_mx(self, domain: str) -> MxAnswer:
        """The hosts to try for mail to ``domain``, in order; raises DnsError."""
        literal = address_literal(domain)
        if literal is not None and domain.strip().startswith("["):
            return MxAnswer(domain.strip(), (MxHost(0, literal),), implicit=True)
        name, text = _parse_name(domain)
        outcome = await self._lookup(name, _MX)
        outcome.check()
        if outcome.records:
            return self._mx_answer(text, outcome.records)
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
        name, text = _parse_name(host)
        return await self._addresses(name, text)

    # -- for SPF, DKIM, DMARC and FCrDNS --------------------------------------------------

    async def resolve_txt(self, name: str) -> list[str]:
        """Each TXT record of ``name`` with its strings joined; [] when it has none."""
        qname, _ = _parse_name(name)
        outcome = await self._lookup(qname, _TXT)
        outcome.check()
        return [
            b"".join(rd.strings).decode("utf-8", "replace")
            for rd in outcome.records
            if isinstance(rd, dns.rdtypes.txtbase.TXTBase)
        ]

    async def resolve_ptr(self, ip: str) -> list[str]:
        """Host names of the PTR records of ``ip``; [] when it has none."""
        literal = address_literal(ip)
        if literal is None:
            raise DnsError(f"{ip!r} is not an IP address", temporary=False)
        outcome = await self._lookup(dns.reversename.from_address(literal), _PTR)
        outcome.check()
        return [
            _host_text(rd.target)
            for rd in outcome.records
            if isinstance(rd, dns.rdtypes.nsbase.NSBase)
        ]

    # -- housekeeping ---------------------------------------------------------------------

    def stats(self) -> CacheStats:
        return CacheStats(len(self._cache), self._hits, self._queries, self._shared)

    def clear_cache(self) -> None:
        self._cache.clear()
        self._mx_targets.clear()

    # -- internals ------------------------------------------------------------------------

    def _mx_answer(self, domain: str, records: Sequence[dns.rdata.Rdata]) -> MxAnswer:
        hosts: list[MxHost] = []
        null = 0
        for rd in records:
            if not isinstance(rd, dns.rdtypes.mxbase.MXBase):
                continue
            if rd.exchange == dns.name.root:
                null += 1
            else:
                hosts.append(MxHost(rd.preference, _host_text(rd.exchange)))
        if not hosts:
            return MxAnswer(domain, (), null_mx=True)
        if null:
            log.warning("%s mixes a null MX with real MX hosts; using the real ones", domain)
        shuffled = sorted((h.preference, self._rng.random(), h) for h in hosts)
        return MxAnswer(domain, tuple(h for _, _, h in shuffled))

    async def _addresses(self, name: dns.name.Name, text: str) -> list[str]:
        v4, v6 = await asyncio.gather(self._lookup(name, _A), self._lookup(name, _AAAA))
        found = [
            str(rd.address)
            for rd in (*v4.records, *v6.records)
            if isinstance(rd, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA)
        ]
        if found:
            return found
        for outcome in sorted((v4, v6), key=lambda o: not o.temporary):
            outcome.check()  # a temporary failure wins over NXDOMAIN: it may be transient
        raise DnsError(f"{text}: no A or AAAA record", temporary=False)

    async def _lookup(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> _Outcome:
        key = (name.to_text().lower(), int(rdtype))
        cached = self._cache.get(key)
        if cached is not None:
            self._hits += 1
            return cached
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

    def _forget(self, key: tuple[str, int], task: asyncio.Task[_Outcome]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _fetch(
        self, key: tuple[str, int], name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> _Outcome:
        outcome, ttl = await self._query(name, rdtype)
        self._cache.put(key, outcome, ttl)
        return outcome

    async def _query(
        self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> tuple[_Outcome, float]:
        """Ask the network once; never raises, the error is part of the outcome."""
        what = f"{_host_text(name)}/{dns.rdatatype.to_text(rdtype)}"
        try:
            answer = await self._resolver.resolve(
                name, rdtype, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN as exc:
            ttl = _negative_ttl(exc)
            return _Outcome(error=f"{_host_text(name)}: no such domain (NXDOMAIN)"), ttl
        except dns.resolver.YXDOMAIN:
            return _Outcome(error=f"{what}: name too long (YXDOMAIN)"), DEFAULT_NEGATIVE_TTL
        except dns.exception.Timeout:
            return self._failure(f"DNS lookup of {what} timed out")
        except dns.resolver.NoNameservers as exc:
            return self._failure(f"DNS lookup of {what} failed: {exc}")
        except (dns.exception.DNSException, OSError) as exc:
            return self._failure(f"DNS lookup of {what} failed: {exc}")
        chain = answer.chaining_result
        records = tuple(answer.rrset) if answer.rrset is not None else ()
        if records:
            ttl = min(float(chain.minimum_ttl), MAX_TTL)
        else:
            ttl = min(float(chain.minimum_ttl), MAX_NEGATIVE_TTL)
        self._note_oddities(name, rdtype, records, chain.canonical_name, ttl)
        return _Outcome(records), ttl

    def _failure(self, message: str) -> tuple[_Outcome, float]:
        log.info("%s", message)
        return _Outcome(error=message, temporary=True), self._failure_ttl

    def _note_oddities(
        self,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        records: tuple[dns.rdata.Rdata, ...],
        canonical: dns.name.Name,
        ttl: float,
    ) -> None:
        """Warn (once per fetch) about MX targets that are IP literals or CNAMEs."""
        if rdtype == _MX:
            for rd in records:
                if not isinstance(rd, dns.rdtypes.mxbase.MXBase):
                    continue
                target = _host_text(rd.exchange)
                if address_literal(target) is not None:
                    log.warning("MX of %s is an IP address (%s); using it", name, target)
                self._mx_targets.put(target, _host_text(name), ttl)
        elif rdtype in (_A, _AAAA) and canonical != name:
            domain = self._mx_targets.get(_host_text(name))
            if domain is not None:
                log.warning(
                    "MX host %s of %s is a CNAME for %s; following it",
                    _host_text(name),
                    domain,
                    _host_text(canonical),
                )


def _parse_name(text: str) -> tuple[dns.name.Name, str]:
    """An absolute DNS name and its display form (lower case, no trailing dot)."""
    display = text.strip().rstrip(".").lower()
    if not display:
        raise DnsError("empty domain name", temporary=False)
    try:
        name = dns.name.from_text(display)
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise DnsError(f"{text!r} is not a valid domain name: {exc}", temporary=False) from exc
    return name, display


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
