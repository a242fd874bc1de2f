"""Shaping as data: site rollup, the layering of limits, the operator's file and its errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hayate.config import ConfigError, DeliveryConfig, ShapingConfig, parse_config
from hayate.queue import shaping as shaping_module
from hayate.queue.shaping import Limits, Shaping, Site, parse_shaping

GOOGLE_MX = ["aspmx.l.google.com", "alt1.aspmx.l.google.com", "alt2.aspmx.l.google.com"]
T0 = 1_700_000_000.0


def make(tmp_path: Path, text: str | None = None, presets: bool = True, **delivery: int) -> Shaping:
    file = None
    if text is not None:
        file = tmp_path / "shaping.toml"
        file.write_text(text, encoding="utf-8")
    return Shaping.from_config(
        ShapingConfig(presets=presets, file=file), DeliveryConfig.model_validate(delivery)
    )


@pytest.fixture
def shipped(tmp_path: Path) -> Shaping:
    return make(tmp_path)


# --- sites ----------------------------------------------------------------------------------


def test_provider_domains_and_workspace_rollup(shipped: Shaping) -> None:
    assert shipped.site_for("gmail.com", GOOGLE_MX) == Site("gmail", "gmail")
    assert shipped.site_for("googlemail.com", []) == Site("gmail", "gmail")
    # A Google Workspace customer: known only by its MX hosts.
    assert shipped.site_for("customer.example", GOOGLE_MX) == Site("gmail", "gmail")
    # Microsoft 365 tenant and consumer Outlook.
    assert shipped.site_for(
        "contoso.example", ["contoso-example.mail.protection.outlook.com"]
    ) == Site("outlook", "outlook")
    assert shipped.site_for("hotmail.co.jp", []) == Site("outlook", "outlook")
    assert shipped.site_for("verizon.example", ["mx-aol.mail.gm0.yahoodns.net"]).provider == (
        "yahoo"
    )


def test_yahoo_japan_is_not_yahoo(shipped: Shaping) -> None:
    assert shipped.site_for("yahoo.co.jp", ["mx.mail.yahoo.co.jp"]) == Site(
        "yahoo-japan", "yahoo-japan"
    )
    assert shipped.site_for("yahoo.com", ["mta5.am0.yahoodns.net"]) == Site("yahoo", "yahoo")
    assert shipped.site_for("aol.com", []).provider == "yahoo"


@pytest.mark.parametrize(
    ("domain", "provider"),
    [
        ("docomo.ne.jp", "docomo"),
        ("ezweb.ne.jp", "au"),
        ("au.com", "au"),
        ("biz.ezweb.ne.jp", "au"),
        ("softbank.ne.jp", "softbank"),
        ("i.softbank.jp", "softbank"),
        ("t.vodafone.ne.jp", "softbank"),
        ("icloud.com", "icloud"),
        ("me.com", "icloud"),
        ("mac.com", "icloud"),
        ("ymail.com", "yahoo"),
        ("rocketmail.com", "yahoo"),
        ("live.com", "outlook"),
        ("msn.com", "outlook"),
        ("outlook.jp", "outlook"),
    ],
)
def test_shipped_provider_domains(shipped: Shaping, domain: str, provider: str) -> None:
    assert shipped.site_for(domain, [f"mx.{domain}"]).provider == provider


def test_mx_rollup_groups_domains_with_the_same_hosts(shipped: Shaping) -> None:
    a = shipped.site_for("a.example", ["mx1.host.example", "mx2.host.example"])
    b = shipped.site_for("b.example", ["MX2.host.example.", "mx1.host.example"])
    c = shipped.site_for("c.example", ["mx1.host.example"])
    assert a == b == Site("mx:mx1.host.example,mx2.host.example", None)
    assert c == Site("mx:mx1.host.example", None)


def test_suffix_matches_whole_labels_only(shipped: Shaping) -> None:
    site = shipped.site_for("phish.example", ["mx.notgoogle.com", "evil-google.com"])
    assert site.provider is None
    assert shipped.site_for("x.example", ["google.com"]).provider == "gmail"


def test_no_mx_hosts_means_the_domain_is_its_own_site(shipped: Shaping) -> None:
    assert shipped.site_for("Relay.Example.", []) == Site("relay.example", None)


def test_domain_membership_beats_mx_suffix(tmp_path: Path) -> None:
    s = make(tmp_path, '[provider.mine]\ndomains = ["mine.example"]\n')
    assert s.site_for("mine.example", GOOGLE_MX) == Site("mine", "mine")


def test_presets_off(tmp_path: Path) -> None:
    s = make(tmp_path, presets=False)
    assert s.providers == ()
    assert s.site_for("gmail.com", GOOGLE_MX).provider is None
    assert s.rules_for(s.site_for("gmail.com", GOOGLE_MX)) == ()


# --- limits ---------------------------------------------------------------------------------


def test_defaults_come_from_delivery(tmp_path: Path) -> None:
    s = make(
        tmp_path,
        connections_per_destination=7,
        messages_per_connection=70,
        recipients_per_transaction=17,
    )
    site = s.site_for("plain.example", ["mx.plain.example"])
    assert s.limits_for(site, "plain.example") == Limits(7, 70, 17, None, None, None)


def test_shipped_limits(shipped: Shaping) -> None:
    gmail = shipped.limits_for(shipped.site_for("gmail.com", []), "gmail.com")
    assert (gmail.connections, gmail.messages_per_connection) == (10, 100)
    docomo = shipped.limits_for(shipped.site_for("docomo.ne.jp", []), "docomo.ne.jp")
    assert docomo.connections <= 5
    assert docomo.messages_per_minute is not None


def test_shipped_values_only_lower_limits(tmp_path: Path) -> None:
    s = make(tmp_path, connections_per_destination=2, messages_per_connection=5)
    gmail = s.limits_for(s.site_for("gmail.com", []), "gmail.com")
    assert (gmail.connections, gmail.messages_per_connection) == (2, 5)
    # A shipped rate is taken where nothing was set; a lower operator default rate stays.
    s = make(tmp_path, "[default]\nmessages_per_minute = 100\n")
    docomo = s.limits_for(s.site_for("docomo.ne.jp", []), "docomo.ne.jp")
    assert docomo.messages_per_minute == 100.0


def test_layering_default_provider_site_domain(tmp_path: Path) -> None:
    text = """
[default]
connections = 4
messages_per_minute = 1000

[provider.gmail]
connections = 30                  # the operator may raise a shipped value
messages_per_hour = 5000

[site."gmail"]
messages_per_connection = 42

[site."mx:mx.rollup.example"]
connections = 2

[domain."special.example"]
messages_per_minute = "unlimited"
recipients_per_transaction = 5
"""
    s = make(tmp_path, text)
    gmail = s.site_for("gmail.com", [])
    assert s.limits_for(gmail, "gmail.com") == Limits(30, 42, 100, 1000.0, 5000.0, None)
    ws = s.site_for("special.example", GOOGLE_MX)
    assert s.limits_for(ws, "special.example") == Limits(30, 42, 5, None, 5000.0, None)
    rollup = s.site_for("r.example", ["mx.rollup.example"])
    assert s.limits_for(rollup, "r.example") == Limits(2, 1000, 100, 1000.0, None, None)
    other = s.site_for("o.example", ["mx.other.example"])
    assert s.limits_for(other, "o.example").connections == 4


def test_unlimited_lifts_a_shipped_rate(tmp_path: Path) -> None:
    s = make(tmp_path, '[provider.docomo]\nmessages_per_minute = "unlimited"\n')
    docomo = s.limits_for(s.site_for("docomo.ne.jp", []), "docomo.ne.jp")
    assert docomo.messages_per_minute is None
    assert docomo.connections == 3  # the other shipped values stay


def test_operator_provider_redefinition_and_disable(tmp_path: Path) -> None:
    text = """
[provider.icloud]
enabled = false

[provider.gmail]
domains = ["gmail.com"]          # replaces the shipped list: googlemail.com is no longer gmail

[provider.example-isp]
domains = ["isp.example"]
mx_suffixes = [".mx.isp.example"]
connections = 2

[[provider.example-isp.automation]]
codes = ["421"]
match = "too busy"
action = "suspend"
duration = "20m"
"""
    s = make(tmp_path, text)
    assert "icloud" not in s.providers and "example-isp" in s.providers
    assert s.site_for("icloud.com", ["mx01.mail.icloud.com"]).provider is None
    assert s.site_for("googlemail.com", []).provider is None
    assert s.site_for("googlemail.com", GOOGLE_MX).provider == "gmail"  # suffixes kept
    isp = s.site_for("customer.example", ["a.mx.isp.example"])
    assert isp == Site("example-isp", "example-isp")
    assert s.limits_for(isp, "customer.example").connections == 2
    gov = s.governor(isp)
    assert gov.on_reply(421, "4.3.2", "Too busy right now", T0) is not None
    assert gov.state(T0).suspended_until == T0 + 1200


def test_operator_rules_come_before_shipped_ones(tmp_path: Path) -> None:
    text = """
[[automation]]
name = "my blocked"
codes = ["5.7"]
match = "spamhaus"
action = "suspend"
duration = "6h"

[[site."gmail".automation]]
name = "site rule"
codes = ["4.7.28"]
action = "suspend"
duration = "2h"
"""
    s = make(tmp_path, text)
    labels = [r.label for r in s.rules_for(s.site_for("gmail.com", []))]
    assert labels[0] == "site rule"
    assert labels.index("gmail 4.7.28 unusual rate") < labels.index("my blocked")
    assert labels.index("my blocked") < labels.index("blocked")
    gov = s.governor(s.site_for("gmail.com", []))
    gov.on_reply(421, "4.7.28", "unusual rate", T0)
    assert gov.state(T0).suspended_until == T0 + 7200


def test_governors_are_fresh_per_path(shipped: Shaping) -> None:
    site = shipped.site_for("gmail.com", [])
    one, two = shipped.governor(site), shipped.governor(site)
    one.on_reply(421, "4.7.28", "unusual rate", T0)
    assert one.state(T0).suspended_until > T0
    assert two.state(T0).suspended_until == 0.0


# --- the operator's file and its errors -----------------------------------------------------


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        make(tmp_path, text)
    message = str(info.value)
    assert str(tmp_path / "shaping.toml") in message
    return message


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("[default]\nconections = 3\n", "default.conections", "unknown key"),
        ("[provider.gmail]\nconnections = -1\n", "provider.gmail.connections", "greater than 0"),
        ("[provider.gmail]\nconnections = 0\n", "provider.gmail.connections", "greater than 0"),
        ('[default]\nconnections = "3"\n', "default.connections", "integer"),
        ('[domain."x.example"]\nmessages_per_hour = -5\n', "messages_per_hour", "more than zero"),
        ('[default]\nmessages_per_minute = "lots"\n', "messages_per_minute", '"unlimited"'),
        ("[site.x]\nfoo = 1\n", "site.x.foo", "unknown key"),
        ("[sites.x]\nconnections = 1\n", "sites", "unknown key"),
        (
            '[[automation]]\ncodes = ["421"]\naction = "slow"\nduration = "5 minutes"\n',
            "automation.0.duration",
            "not a duration",
        ),
        (
            '[[automation]]\ncodes = ["421"]\naction = "slow"\nduration = "-5m"\n',
            "automation.0.duration",
            "not a duration",
        ),
        (
            '[[automation]]\ncodes = ["421"]\naction = "pause"\nduration = "5m"\n',
            "automation.0.action",
            "'suspend' or 'slow'",
        ),
        (
            '[[automation]]\naction = "slow"\nduration = "5m"\n',
            "automation.0",
            "needs 'match' or 'codes'",
        ),
        (
            '[[automation]]\nmatch = "(unclosed"\naction = "slow"\nduration = "5m"\n',
            "automation.0.match",
            "regular expression",
        ),
        (
            '[[automation]]\ncodes = ["4.7.0.0"]\naction = "slow"\nduration = "5m"\n',
            "automation.0.codes",
            "enhanced status",
        ),
        (
            '[[automation]]\ncodes = ["421"]\naction = "slow"\nduration = "5m"\nfactor = 2\n',
            "automation.0.factor",
            "less than or equal to 1",
        ),
        (
            '[[provider.gmail.automation]]\ncodes = ["421"]\naction = "slow"\n'
            'duration = "5m"\nspeed = 1\n',
            "provider.gmail.automation.0.speed",
            "unknown key",
        ),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, text: str, where: str, what: str) -> None:
    message = _error(tmp_path, text)
    assert where in message
    assert what in message


def test_invalid_toml(tmp_path: Path) -> None:
    assert "not valid TOML" in _error(tmp_path, "[default\nconnections = 1\n")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: shaping file not found"):
        Shaping.from_config(ShapingConfig(file=missing), DeliveryConfig())


def test_file_named_in_the_main_config_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "shaping.toml").write_text("[default]\nconnections = 3\n", encoding="utf-8")
    cfg = parse_config('[shaping]\nfile = "shaping.toml"\n', tmp_path)
    s = Shaping.from_config(cfg.shaping, cfg.delivery)
    assert s.limits_for(s.site_for("x.example", ["mx.x.example"]), "x.example").connections == 3


def test_the_documented_example_is_valid() -> None:
    doc = shaping_module.__doc__ or ""
    start = doc.index("Example::") + len("Example::")
    end = doc.index("Rules and their effects")
    example = "\n".join(line[4:] for line in doc[start:end].splitlines())
    parsed = parse_shaping(example, "docstring example")
    assert "example-isp" in parsed.provider and parsed.automation[0].threshold == 5


# --- speed ----------------------------------------------------------------------------------


def test_lookups_are_cached(shipped: Shaping) -> None:
    site = shipped.site_for("customer.example", GOOGLE_MX)
    assert shipped.site_for("customer.example", GOOGLE_MX) is site
    limits = shipped.limits_for(site, "customer.example")
    assert shipped.limits_for(site, "customer.example") is limits
    start = time.perf_counter()
    for _ in range(20_000):
        shipped.limits_for(shipped.site_for("customer.example", GOOGLE_MX), "customer.example")
    per_call = (time.perf_counter() - start) / 20_000
    assert per_call < 20e-6  # a couple of dict lookups, generous for a loaded machine
