"""Reply automation: which replies fire which rules, and effects that expire on their own."""

from __future__ import annotations

import re

import pytest

from hayate.queue.automation import PathGovernor, Rule, check_code_pattern, parse_duration
from hayate.queue.shaping import Limits

T0 = 1_700_000_000.0

LIMITS = Limits(
    connections=10,
    messages_per_connection=100,
    recipients_per_transaction=50,
    messages_per_minute=600.0,
    messages_per_hour=None,
    connections_per_minute=60.0,
)


def rule(
    action: str = "suspend",
    duration: float = 600.0,
    codes: tuple[str, ...] = (),
    match: str | None = None,
    **kw: object,
) -> Rule:
    return Rule(
        label=str(kw.pop("label", "test rule")),
        action=action,  # type: ignore[arg-type]
        duration=duration,
        codes=codes,
        pattern=re.compile(match, re.IGNORECASE) if match else None,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("250ms", 0.25),
        (" 10 m ", 600),
        ("1.5h", 5400),
        (45, 45),
        (0.5, 0.5),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "m", "10", "10x", "1h 2", "-5m", "0s", 0, -3, True])
def test_parse_duration_rejects(text: str | float) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("entry", ["421", "4", "45", "4.7.0", "4.7", "5.x.1", "4.7.650"])
def test_code_patterns_accepted(entry: str) -> None:
    assert check_code_pattern(entry) == entry


@pytest.mark.parametrize("entry", ["", "600", "4.7.0.1", "3.7.0", "4..7", "abc", "4.7.1234"])
def test_code_patterns_rejected(entry: str) -> None:
    with pytest.raises(ValueError):
        check_code_pattern(entry)


def test_suspend_then_recover_on_its_own() -> None:
    gov = PathGovernor([rule("suspend", 1800.0, codes=("4.7.28",), label="gmail 4.7.28")])
    fired = gov.on_reply(421, "4.7.28", "Our system has detected an unusual rate", T0)
    assert fired is not None and "gmail 4.7.28" in fired and "unusual rate" in fired
    state = gov.state(T0 + 1)
    assert state.suspended_until == T0 + 1800.0
    assert "gmail 4.7.28" in state.reason and "421 4.7.28" in state.reason
    assert gov.state(T0 + 1799).suspended_until == T0 + 1800.0
    after = gov.state(T0 + 1800)
    assert after.suspended_until == 0.0 and after.reason == "" and after.rate_factor == 1.0


def test_slow_halves_rates_and_connections_then_recovers() -> None:
    gov = PathGovernor([rule("slow", 900.0, codes=("4.7",), match="try again later", factor=0.5)])
    assert gov.apply(LIMITS, T0) is LIMITS
    assert gov.on_reply(421, "4.7.0", "Try again later, closing connection.", T0)
    slowed = gov.apply(LIMITS, T0 + 10)
    assert slowed.connections == 5
    assert slowed.messages_per_minute == 300.0
    assert slowed.connections_per_minute == 30.0
    assert slowed.messages_per_hour is None
    assert slowed.messages_per_connection == 100  # untouched
    assert gov.state(T0 + 10).suspended_until == 0.0
    assert gov.apply(LIMITS, T0 + 900) == LIMITS


def test_connection_cap() -> None:
    gov = PathGovernor(
        [
            rule(
                "slow",
                600.0,
                match="too many (concurrent )?(smtp )?connections",
                factor=1.0,
                max_connections=1,
            )
        ]
    )
    gov.on_reply(421, "4.7.0", "Too many concurrent SMTP connections from this IP", T0)
    limited = gov.apply(LIMITS, T0 + 1)
    assert limited.connections == 1
    assert limited.messages_per_minute == 600.0
    assert gov.state(T0 + 1).max_connections == 1
    assert gov.apply(LIMITS, T0 + 601).connections == 10


def test_success_and_unrelated_failures_fire_nothing() -> None:
    gov = PathGovernor(
        [
            rule("suspend", codes=("5.7",), match="blocked|spamhaus"),
            rule("slow", codes=("421",), factor=0.5),
        ]
    )
    assert gov.on_reply(250, "2.0.0", "OK blocked word in a success", T0) is None
    assert gov.on_reply(354, "", "Start mail input", T0) is None
    assert gov.on_reply(550, "5.1.1", "User unknown", T0) is None
    assert gov.on_reply(450, "4.2.2", "Mailbox full, try again later", T0) is None
    assert gov.state(T0).reason == ""


def test_basic_code_prefix_and_enhanced_components() -> None:
    r = rule(codes=("4",))
    assert r.matches(421, "", "x") and r.matches(450, "", "x") and not r.matches(550, "", "x")
    r = rule(codes=("4.7.2",))
    assert not r.matches(421, "4.7.28", "x")  # components, not characters
    assert r.matches(421, "4.7.2", "x")
    r = rule(codes=("4.x.1",))
    assert r.matches(450, "4.2.1", "x") and not r.matches(450, "4.2.0", "x")
    r = rule(codes=("421", "4.7.0"), match="later")
    assert r.matches(421, "", "try later")  # any of the codes
    assert r.matches(451, "4.7.0", "try later")
    assert not r.matches(451, "4.3.0", "try later")
    assert not r.matches(421, "4.7.0", "go away")  # both codes and text must match


def test_enhanced_code_taken_from_the_text_when_not_given() -> None:
    gov = PathGovernor([rule(codes=("4.7.650",))])
    assert gov.on_reply(451, "", "4.7.650 The mail server has been temporarily rate limited", T0)
    assert gov.state(T0).suspended_until > T0


def test_connection_failure_reply_can_fire() -> None:
    gov = PathGovernor([rule(match="connection refused")])
    assert gov.on_reply(0, "", "connect to mx.example.net: Connection refused", T0)
    assert gov.state(T0).suspended_until == T0 + 600.0


def test_first_matching_rule_wins() -> None:
    specific = rule("suspend", 1800.0, codes=("4.7.28",), label="specific")
    general = rule("slow", 900.0, codes=("4.7",), factor=0.5, label="general")
    gov = PathGovernor([specific, general])
    fired = gov.on_reply(421, "4.7.28", "unusual rate", T0)
    assert fired is not None and fired.startswith("specific")
    state = gov.state(T0)
    assert state.rate_factor == 1.0 and state.suspended_until == T0 + 1800.0


def test_effects_combine_to_the_strictest() -> None:
    gov = PathGovernor(
        [
            rule("slow", 900.0, codes=("4.7.0",), factor=0.5, max_connections=4, label="a"),
            rule("slow", 300.0, codes=("4.7.1",), factor=0.25, max_connections=2, label="b"),
            rule("suspend", 60.0, codes=("4.7.2",), label="c"),
        ]
    )
    gov.on_reply(421, "4.7.0", "one", T0)
    gov.on_reply(421, "4.7.1", "two", T0)
    gov.on_reply(421, "4.7.2", "three", T0)
    state = gov.state(T0 + 1)
    assert (state.suspended_until, state.rate_factor, state.max_connections) == (T0 + 60, 0.25, 2)
    assert "a:" in state.reason and "b:" in state.reason and "c:" in state.reason
    later = gov.state(T0 + 301)  # b and c are over, a remains
    assert (later.suspended_until, later.rate_factor, later.max_connections) == (0.0, 0.5, 4)
    assert gov.apply(LIMITS, T0 + 301).connections == 4
    assert gov.state(T0 + 900).reason == ""


def test_firing_again_extends_the_effect() -> None:
    gov = PathGovernor([rule("suspend", 600.0, codes=("421",))])
    gov.on_reply(421, "", "busy", T0)
    gov.on_reply(421, "", "still busy", T0 + 500)
    state = gov.state(T0 + 700)
    assert state.suspended_until == T0 + 1100
    assert "still busy" in state.reason


def test_threshold_within_window() -> None:
    gov = PathGovernor(
        [rule("slow", 600.0, codes=("4.2.1",), factor=0.5, threshold=3, window=60.0)]
    )
    assert gov.on_reply(450, "4.2.1", "rate", T0) is None
    assert gov.on_reply(450, "4.2.1", "rate", T0 + 30) is None
    # The first hit left the window: still two within it.
    assert gov.on_reply(450, "4.2.1", "rate", T0 + 61) is None
    assert gov.state(T0 + 61).rate_factor == 1.0
    assert gov.on_reply(450, "4.2.1", "rate", T0 + 62) is not None
    assert gov.state(T0 + 62).rate_factor == 0.5


def test_apply_never_goes_below_one_connection() -> None:
    gov = PathGovernor([rule("slow", 60.0, codes=("4",), factor=0.1)])
    gov.on_reply(421, "", "slow down", T0)
    one = Limits(3, 10, 10, None, None, None)
    assert gov.apply(one, T0).connections == 1


def test_long_reply_text_is_bounded_in_the_reason() -> None:
    gov = PathGovernor([rule(codes=("421",))])
    fired = gov.on_reply(421, "4.7.0", "x" * 100_000, T0)
    assert fired is not None and len(fired) < 400
