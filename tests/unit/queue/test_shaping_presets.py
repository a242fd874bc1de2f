"""The shipped presets against replies as real providers send them."""

from __future__ import annotations

import pytest

from hayate.config import DeliveryConfig, ShapingConfig
from hayate.queue.automation import PathState
from hayate.queue.shaping import Shaping, load_presets

T0 = 1_700_000_000.0
IP = "[192.0.2.10]"


@pytest.fixture(scope="module")
def shaping() -> Shaping:
    return Shaping.from_config(ShapingConfig(), DeliveryConfig())


def after(shaping: Shaping, domain: str, mx: list[str], code: int, text: str) -> PathState:
    """The path state one second after this reply on a fresh path to ``domain``."""
    gov = shaping.governor(shaping.site_for(domain, mx))
    enhanced = text.split(" ", 1)[0] if text[:1].isdigit() else ""
    gov.on_reply(code, enhanced, text, T0)
    return gov.state(T0 + 1)


def test_presets_are_package_data_and_valid() -> None:
    presets = load_presets()
    assert set(presets.provider) == {
        "gmail", "outlook", "yahoo", "yahoo-japan", "icloud", "docomo", "au", "softbank",
    }  # fmt: skip
    for name, table in presets.provider.items():
        assert table.domains and table.mx_suffixes, name
        assert table.automation, name
        assert table.connections is not None and table.connections <= 10, name
    assert len(presets.automation) == 3


@pytest.mark.parametrize(
    ("domain", "mx", "code", "text", "suspended_for", "factor", "cap"),
    [
        (
            "gmail.com", ["gmail-smtp-in.l.google.com"], 421,
            f"4.7.28 {IP} Our system has detected an unusual rate of unsolicited mail "
            "originating from your IP address. To protect our users from spam, mail sent from "
            "your IP address has been temporarily rate limited.",
            1800, 1.0, None,
        ),
        (
            "workspace.example", ["aspmx.l.google.com"], 421,
            "4.7.0 Try again later, closing connection. (EHLO) s5si123 - gsmtp",
            0, 0.5, None,
        ),
        (
            "hotmail.com", ["hotmail-com.olc.protection.outlook.com"], 451,
            f"4.7.650 The mail server {IP} has been temporarily rate limited due to IP "
            "reputation. For e-mail delivery information, see https://postmaster.live.com",
            1800, 1.0, None,
        ),
        (
            "contoso.example", ["contoso-example.mail.protection.outlook.com"], 451,
            f"4.7.500 Server busy. Please try again later from {IP}. (S77714)",
            0, 0.5, 1,
        ),
        (
            "outlook.com", [], 550,
            f"5.7.1 Unfortunately, messages from {IP} weren't sent. Please contact your "
            "Internet service provider since part of their network is on our block list (S3150).",
            3600, 1.0, None,
        ),
        (
            "yahoo.com", ["mta6.am0.yahoodns.net"], 421,
            "4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected "
            "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
            1800, 1.0, None,
        ),
        (
            "aol.com", [], 421,
            "4.7.0 [TS01] Messages from 192.0.2.10 temporarily deferred due to user complaints",
            1800, 1.0, None,
        ),
        (
            "docomo.ne.jp", ["mfsmax.docomo.ne.jp"], 421,
            "4.7.0 mfsmax.docomo.ne.jp Too much mail from your IP, try again later",
            600, 1.0, None,
        ),
        (
            "ezweb.ne.jp", [], 450,
            "4.7.1 Too many messages, please try again later",
            600, 1.0, None,
        ),
        (
            "i.softbank.jp", [], 421, "4.3.2 Service temporarily unavailable", 600, 1.0, None,
        ),
        (
            "small.example", ["mx.small.example"], 421,
            "4.7.0 mx.small.example Error: too many concurrent SMTP connections from this IP",
            0, 1.0, 1,
        ),
        (
            "small.example", ["mx.small.example"], 452,
            "4.7.1 Rate limit exceeded for 192.0.2.10, throttling",
            0, 0.5, None,
        ),
        (
            "small.example", ["mx.small.example"], 554,
            f"5.7.1 Service unavailable; Client host {IP} blocked using zen.spamhaus.org",
            3600, 1.0, None,
        ),
    ],
)  # fmt: skip
def test_real_replies_fire_the_expected_rule(
    shaping: Shaping,
    domain: str,
    mx: list[str],
    code: int,
    text: str,
    suspended_for: float,
    factor: float,
    cap: int | None,
) -> None:
    state = after(shaping, domain, mx, code, text)
    assert state.suspended_until == (T0 + suspended_for if suspended_for else 0.0)
    assert state.rate_factor == factor
    assert state.max_connections == cap
    assert state.reason


@pytest.mark.parametrize(
    ("domain", "code", "text"),
    [
        ("gmail.com", 550, "5.1.1 The email account that you tried to reach does not exist."),
        ("gmail.com", 452, "4.2.2 The email account that you tried to reach is over quota."),
        ("outlook.com", 550, "5.5.0 Requested action not taken: mailbox unavailable."),
        ("docomo.ne.jp", 550, "5.1.1 Unknown user"),
        ("small.example", 451, "4.3.0 Temporary local problem"),
        ("small.example", 250, "2.0.0 Ok: queued as 4F2"),
    ],
)
def test_ordinary_failures_leave_the_path_alone(
    shaping: Shaping, domain: str, code: int, text: str
) -> None:
    state = after(shaping, domain, [], code, text)
    assert state == PathState(0.0, 1.0, None, "")


def test_gmail_recipient_rate_needs_many_replies(shaping: Shaping) -> None:
    gov = shaping.governor(shaping.site_for("gmail.com", []))
    text = (
        "4.2.1 The user you are trying to contact is receiving mail at a rate that prevents "
        "additional messages from being delivered."
    )
    for i in range(9):
        assert gov.on_reply(450, "4.2.1", text, T0 + i) is None
    assert gov.on_reply(450, "4.2.1", text, T0 + 9) is not None
    assert gov.state(T0 + 10).rate_factor == 0.5
    assert gov.state(T0 + 9 + 600).rate_factor == 1.0


def test_suspension_recovers_on_its_own(shaping: Shaping) -> None:
    gov = shaping.governor(shaping.site_for("yahoo.com", []))
    gov.on_reply(421, "4.7.0", "[TSS04] Messages temporarily deferred", T0)
    assert gov.state(T0 + 1799).suspended_until == T0 + 1800
    assert gov.state(T0 + 1800) == PathState(0.0, 1.0, None, "")
