"""Where one delivery may connect to, and what to report when nothing worked.

A :class:`Route` is built per delivery attempt from the job: a transport nexthop
("host:port", connected to directly, no MX lookup) or the MX hosts of the destination domain
(RFC 5321 section 5: preference order, the domain itself when it has no MX, none at all for a
null MX). Addresses are looked up lazily, host by host, so a working first MX costs one
address lookup; at most :data:`MAX_ADDRESSES` addresses are tried per attempt.

DNS answers that settle the attempt without any connection:
- null MX (RFC 7505)                      → bounced 556 5.1.10
- MX lookup fails permanently (NXDOMAIN)  → bounced 550 5.1.2
- MX lookup fails temporarily             → deferred 451 4.4.3
- every host's address lookup fails permanently → bounced 550 5.1.2 (for a nexthop from the
  configuration: deferred, so a typo in a transport rule does not bounce the whole queue).
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass

from hayate.config import split_hostport
from hayate.core.reply import SmtpReply
from hayate.core.results import Outcome
from hayate.core.seams import DeliveryJob, DnsError, MxResolver

MAX_ADDRESSES = 5  # like Postfix's smtp_mx_address_limit


@dataclass(frozen=True, slots=True)
class Target:
    """One address of one host to connect to."""

    host: str
    ip: str
    port: int

    @property
    def relay(self) -> str:
        return f"{self.host}[{self.ip}]:{self.port}"


@dataclass(frozen=True, slots=True)
class RouteFailure:
    """The result every recipient gets when no server could be asked."""

    outcome: Outcome
    reply: SmtpReply
    relay: str = "none"


NULL_MX = RouteFailure(Outcome.BOUNCED, SmtpReply(556, "5.1.10", "Recipient address has null MX"))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Route:
    """The addresses to try for one delivery attempt, produced in order on demand."""

    def __init__(
        self,
        resolver: MxResolver,
        hosts: list[str],
        port: int,
        *,
        domain: str = "",
        nexthop: bool = False,
        failure: RouteFailure | None = None,
    ) -> None:
        self._resolver = resolver
        self._hosts = hosts
        self._port = port
        self._domain = domain
        self._nexthop = nexthop
        self._dns_failure = failure
        self._next_host = 0
        self._pending: deque[Target] = deque()
        self._seen: set[str] = set()
        self._tried = 0
        self._lookup_errors: list[tuple[str, DnsError]] = []
        self._last: tuple[Target, SmtpReply] | None = None

    @classmethod
    async def for_job(cls, job: DeliveryJob, resolver: MxResolver, mx_port: int) -> Route:
        if job.nexthop:
            host, port = split_hostport(job.nexthop)
            return cls(resolver, [host.lower().rstrip(".")], port, nexthop=True)
        domain = job.destination.lower().rstrip(".")
        try:
            answer = await resolver.resolve_mx(domain)
        except DnsError as exc:
            if exc.temporary:
                reply = SmtpReply(
                    451, "4.4.3", f"Host or domain name lookup failed for {domain} (MX): {exc}"
                )
                return cls(resolver, [], mx_port, failure=RouteFailure(Outcome.DEFERRED, reply))
            reply = SmtpReply(550, "5.1.2", f"Host or domain name not found: {domain} ({exc})")
            return cls(resolver, [], mx_port, failure=RouteFailure(Outcome.BOUNCED, reply))
        if answer.null_mx:
            return cls(resolver, [], mx_port, failure=NULL_MX)
        hosts = [h.host for h in answer.hosts] or [domain]
        return cls(resolver, hosts, mx_port, domain=domain)

    async def next(self) -> Target | None:
        """The next address to try, or None when the route is used up."""
        if self._dns_failure is not None or self._tried >= MAX_ADDRESSES:
            return None
        while not self._pending:
            if self._next_host >= len(self._hosts):
                return None
            host = self._hosts[self._next_host]
            self._next_host += 1
            if _is_ip(host):
                addresses = [host]
            else:
                try:
                    addresses = await self._resolver.resolve_addresses(host)
                except DnsError as exc:
                    self._lookup_errors.append((host, exc))
                    continue
                if not addresses:
                    self._lookup_errors.append((host, DnsError("no address", temporary=False)))
                    continue
            for ip in addresses:
                if ip not in self._seen:
                    self._seen.add(ip)
                    self._pending.append(Target(host, ip, self._port))
        self._tried += 1
        return self._pending.popleft()

    def note(self, target: Target, reply: SmtpReply) -> None:
        """Remember why ``target`` did not work (the last one is what gets reported)."""
        self._last = (target, reply)

    def failure(self) -> RouteFailure:
        """What to report when :meth:`next` ran dry without a delivery."""
        if self._dns_failure is not None:
            return self._dns_failure
        if self._last is not None:
            target, reply = self._last
            return RouteFailure(Outcome.DEFERRED, reply, target.relay)
        names = ", ".join(host for host, _ in self._lookup_errors) or "(no hosts)"
        detail = "; ".join(f"{host}: {exc}" for host, exc in self._lookup_errors)
        permanent = bool(self._lookup_errors) and all(
            not exc.temporary for _, exc in self._lookup_errors
        )
        if permanent and not self._nexthop:
            reply = SmtpReply(550, "5.1.2", f"Host or domain name not found: {names} ({detail})")
            return RouteFailure(Outcome.BOUNCED, reply)
        reply = SmtpReply(451, "4.4.3", f"Host or domain name lookup failed: {names} ({detail})")
        return RouteFailure(Outcome.DEFERRED, reply)
