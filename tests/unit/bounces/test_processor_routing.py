"""The "bounce" route: mail for the bounce domain goes to the processor, nowhere else."""

from __future__ import annotations

from hayate.config import TransportRule
from hayate.ingest.routing import BOUNCE, Router


def test_bounce_domain_gets_the_bounce_route() -> None:
    router = Router(["example.com"], [TransportRule(domain="*", nexthop="relay:25")],
                    bounce_domain="Bounce.Example.COM.")
    r = router.route("b-abc@BOUNCE.example.com")
    assert (r.route, r.destination, r.nexthop) == (BOUNCE, "bounce", None)
    assert router.is_bounce_domain("bounce.example.com.")
    # Everything else is routed as before (the "*" transport does not catch bounces).
    assert router.route("x@example.com").route == "local"
    assert router.route("x@sub.bounce.example.com").nexthop == "relay:25"


def test_without_a_bounce_domain_nothing_changes() -> None:
    router = Router([], [])
    assert router.route("b-abc@bounce.example.com").route == "remote"
    assert not router.is_bounce_domain("bounce.example.com")
