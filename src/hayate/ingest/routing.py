"""Recipient routing: local mailbox, transport override, or MX delivery.

Order of decisions for ``user@domain`` (after alias expansion):
0. ``domain`` is the bounce domain (``[bounces] domain``) → route "bounce", queue "bounce":
   the bounce processor consumes it, nothing is sent anywhere.
1. ``domain`` is one of ``local_domains`` → route "local", queue "local".
2. a ``[[transport]]`` rule matches (exact domain, then the closest ``.parent`` rule, then
   ``*``) → route "remote", queue = the rule's nexthop, no MX lookup.
3. otherwise → route "remote", queue = the domain, MX lookup at delivery time.
"""

from __future__ import annotations

from collections.abc import Iterable

from hayate.config import TransportRule
from hayate.core.envelope import domain_of
from hayate.store.spool import SpoolRecipient

LOCAL = "local"
REMOTE = "remote"
BOUNCE = "bounce"


class Router:
    def __init__(
        self,
        local_domains: Iterable[str],
        transport: Iterable[TransportRule],
        *,
        bounce_domain: str | None = None,
    ) -> None:
        self._local = {d.lower() for d in local_domains}
        self._bounce = bounce_domain.lower().rstrip(".") if bounce_domain else None
        self._exact: dict[str, str] = {}
        self._parents: dict[str, str] = {}
        self._default: str | None = None
        for rule in transport:
            if rule.domain == "*":
                self._default = rule.nexthop
            elif rule.domain.startswith("."):
                self._parents[rule.domain[1:]] = rule.nexthop
            else:
                self._exact[rule.domain] = rule.nexthop

    def is_local_domain(self, domain: str) -> bool:
        return domain.lower() in self._local

    def is_bounce_domain(self, domain: str) -> bool:
        return self._bounce is not None and domain.lower().rstrip(".") == self._bounce

    def nexthop_for(self, domain: str) -> str | None:
        domain = domain.lower()
        hop = self._exact.get(domain)
        if hop is not None:
            return hop
        labels = domain.split(".")
        for i in range(1, len(labels)):
            hop = self._parents.get(".".join(labels[i:]))
            if hop is not None:
                return hop
        return self._default

    def route(self, address: str, orig: str | None = None) -> SpoolRecipient:
        domain = domain_of(address)
        if self._bounce is not None and domain == self._bounce:
            return SpoolRecipient(address, BOUNCE, BOUNCE, None, orig)
        if domain in self._local:
            return SpoolRecipient(address, LOCAL, LOCAL, None, orig)
        hop = self.nexthop_for(domain)
        if hop is not None:
            return SpoolRecipient(address, REMOTE, hop, hop, orig)
        return SpoolRecipient(address, REMOTE, domain, None, orig)
