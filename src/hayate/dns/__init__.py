"""DNS for Hayate: a cached asynchronous resolver (MX, A/AAAA, TXT, PTR).

``resolver``  :class:`CachingResolver`, the :class:`~hayate.core.seams.MxResolver` the
              runtime wires into delivery (and later into SPF/DKIM/DMARC checks).
``cache``     the bounded TTL cache behind it.
``records``   pure conversions: dnspython records → plain values, names, IP literals.

Imports only :mod:`hayate.core` and dnspython.
"""

from hayate.dns.cache import TtlCache
from hayate.dns.records import address_literal, parse_nameserver
from hayate.dns.resolver import CacheStats, CachingResolver

__all__ = ["CacheStats", "CachingResolver", "TtlCache", "address_literal", "parse_nameserver"]
