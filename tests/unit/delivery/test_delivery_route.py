"""Route: which addresses a delivery tries, in what order, and what is reported if none works.

The DNS seam is our own DictResolver (core.seams.MxResolver backed by dicts)."""

from __future__ import annotations

from tests.integration.delivery.peers import DictResolver

from hayate.core.reply import SmtpReply
from hayate.core.results import Outcome
from hayate.core.seams import DeliveryJob, DnsError, MxAnswer, MxHost
from hayate.delivery.route import MAX_ADDRESSES, Route, Target


def mx_job(domain: str = "example.net") -> DeliveryJob:
    return DeliveryJob("Q", "s@example.org", (f"r@{domain}",), b"x\r\n", domain)


def nexthop_job(nexthop: str) -> DeliveryJob:
    return DeliveryJob("Q", "s@example.org", ("r@example.net",), b"x\r\n", nexthop, nexthop)


async def targets(route: Route) -> list[Target]:
    out = []
    while (t := await route.next()) is not None:
        out.append(t)
    return out


async def test_mx_hosts_then_their_addresses_in_order() -> None:
    dns = DictResolver()
    dns.add_mx("example.net", "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = ["192.0.2.1", "2001:db8::1"]
    dns.addresses["mx2.example.net"] = ["192.0.2.2"]
    route = await Route.for_job(mx_job(), dns, 2525)
    assert await targets(route) == [
        Target("mx1.example.net", "192.0.2.1", 2525),
        Target("mx1.example.net", "2001:db8::1", 2525),
        Target("mx2.example.net", "192.0.2.2", 2525),
    ]
    assert Target("mx1.example.net", "192.0.2.1", 25).relay == "mx1.example.net[192.0.2.1]:25"


async def test_addresses_are_looked_up_only_when_needed() -> None:
    dns = DictResolver()
    dns.add_mx("example.net", "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = ["192.0.2.1"]
    dns.addresses["mx2.example.net"] = ["192.0.2.2"]
    route = await Route.for_job(mx_job(), dns, 25)
    assert await route.next() == Target("mx1.example.net", "192.0.2.1", 25)
    assert dns.address_lookups == ["mx1.example.net"]


async def test_duplicate_addresses_are_tried_once() -> None:
    dns = DictResolver()
    dns.add_mx("example.net", "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = ["192.0.2.1"]
    dns.addresses["mx2.example.net"] = ["192.0.2.1", "192.0.2.2"]
    route = await Route.for_job(mx_job(), dns, 25)
    assert [t.ip for t in await targets(route)] == ["192.0.2.1", "192.0.2.2"]


async def test_at_most_max_addresses() -> None:
    dns = DictResolver()
    dns.add_mx("example.net", "mx.example.net")
    dns.addresses["mx.example.net"] = [f"192.0.2.{i}" for i in range(1, 20)]
    route = await Route.for_job(mx_job(), dns, 25)
    assert len(await targets(route)) == MAX_ADDRESSES


async def test_nexthop_is_connected_directly_without_mx_lookup() -> None:
    dns = DictResolver()
    dns.addresses["relay.example.org"] = ["192.0.2.9"]
    route = await Route.for_job(nexthop_job("relay.example.org:2525"), dns, 25)
    assert await targets(route) == [Target("relay.example.org", "192.0.2.9", 2525)]
    assert dns.mx_lookups == []
    literal = await Route.for_job(nexthop_job("[2001:db8::5]:587"), dns, 25)
    assert await targets(literal) == [Target("2001:db8::5", "2001:db8::5", 587)]
    assert dns.address_lookups == ["relay.example.org"]


async def test_null_mx() -> None:
    dns = DictResolver()
    dns.mx["example.net"] = MxAnswer("example.net", (), null_mx=True)
    route = await Route.for_job(mx_job(), dns, 25)
    assert await route.next() is None
    failure = route.failure()
    assert failure.outcome is Outcome.BOUNCED
    assert failure.reply == SmtpReply(556, "5.1.10", "Recipient address has null MX")


async def test_mx_lookup_errors() -> None:
    dns = DictResolver()
    dns.mx["temp.example"] = DnsError("timeout", temporary=True)
    temp = await Route.for_job(mx_job("temp.example"), dns, 25)
    assert await temp.next() is None
    assert temp.failure().outcome is Outcome.DEFERRED
    assert (temp.failure().reply.code, temp.failure().reply.enhanced) == (451, "4.4.3")
    gone = await Route.for_job(mx_job("gone.example"), dns, 25)
    assert gone.failure().outcome is Outcome.BOUNCED
    assert (gone.failure().reply.code, gone.failure().reply.enhanced) == (550, "5.1.2")
    assert gone.failure().reply.text.startswith("Host or domain name not found")


async def test_implicit_mx_and_empty_answer_use_the_domain() -> None:
    dns = DictResolver()
    dns.mx["example.net"] = MxAnswer("example.net", (MxHost(0, "example.net"),), implicit=True)
    dns.mx["empty.example"] = MxAnswer("empty.example", ())
    dns.addresses["example.net"] = ["192.0.2.3"]
    dns.addresses["empty.example"] = ["192.0.2.4"]
    route = await Route.for_job(mx_job(), dns, 25)
    assert await targets(route) == [Target("example.net", "192.0.2.3", 25)]
    empty = await Route.for_job(mx_job("empty.example"), dns, 25)
    assert await targets(empty) == [Target("empty.example", "192.0.2.4", 25)]


async def test_address_lookup_failures() -> None:
    dns = DictResolver()
    dns.add_mx("example.net", "gone.example.net", "flaky.example.net")
    dns.addresses["flaky.example.net"] = DnsError("SERVFAIL", temporary=True)
    route = await Route.for_job(mx_job(), dns, 25)
    assert await route.next() is None
    assert route.failure().outcome is Outcome.DEFERRED  # one of them may come back

    dns.addresses["flaky.example.net"] = []
    route = await Route.for_job(mx_job(), dns, 25)
    assert await route.next() is None
    assert route.failure().outcome is Outcome.BOUNCED  # all permanently without address
    assert route.failure().reply.enhanced == "5.1.2"


async def test_unknown_nexthop_host_defers_rather_than_bounces() -> None:
    route = await Route.for_job(nexthop_job("typo.example.org:25"), DictResolver(), 25)
    assert await route.next() is None
    assert route.failure().outcome is Outcome.DEFERRED


async def test_last_connection_failure_is_reported() -> None:
    dns = DictResolver()
    dns.add_mx("example.net", "mx1.example.net", "mx2.example.net")
    dns.addresses["mx1.example.net"] = ["192.0.2.1"]
    dns.addresses["mx2.example.net"] = ["192.0.2.2"]
    route = await Route.for_job(mx_job(), dns, 25)
    for target in await targets(route):
        route.note(target, SmtpReply(451, "4.4.1", f"connect to {target.relay}: refused"))
    failure = route.failure()
    assert failure.outcome is Outcome.DEFERRED
    assert failure.relay == "mx2.example.net[192.0.2.2]:25"
    assert failure.reply.text == "connect to mx2.example.net[192.0.2.2]:25: refused"
