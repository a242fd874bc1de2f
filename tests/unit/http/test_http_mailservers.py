"""Which servers autoconfig offers, and which domain a request is about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hayate.config import Config, parse_config
from hayate.http.mailservers import (
    MailServer,
    domain_of_address,
    domain_of_host,
    first_of,
    local_domain_for,
    offered_servers,
)


def config(listen: dict[str, str], autoconfig: dict[str, Any] | None = None) -> Config:
    lines = ['hostname = "mail.example.com"', 'local_domains = ["example.com", "Example.ORG."]',
             "[listen]"]
    lines += [f'{k} = "{v}"' for k, v in listen.items()]
    lines.append("[autoconfig]")
    for key, value in (autoconfig or {}).items():
        lines.append(f"{key} = {value!r}" if isinstance(value, int) else f'{key} = "{value}"')
    return parse_config("\n".join(lines), Path("/tmp"))


def test_every_configured_client_listener_is_offered_in_preference_order() -> None:
    cfg = config({"smtp": "0.0.0.0:25", "submission": "0.0.0.0:587", "http": "127.0.0.1:80",
                  "imap": "0.0.0.0:143", "imaps": "[::]:993", "pop3s": "0.0.0.0:995",
                  "submissions": "0.0.0.0:465"})
    assert offered_servers(cfg) == [
        MailServer("imaps", "imap", "mail.example.com", 993, True),
        MailServer("imap", "imap", "mail.example.com", 143, False),
        MailServer("pop3s", "pop3", "mail.example.com", 995, True),
        MailServer("submissions", "smtp", "mail.example.com", 465, True),
        MailServer("submission", "smtp", "mail.example.com", 587, False),
    ]


def test_overrides_win_and_an_override_port_offers_a_service_without_a_listener() -> None:
    cfg = config({"imaps": "127.0.0.1:10993", "submission": "127.0.0.1:10587"},
                 {"imap_host": "imap.example.net", "smtp_host": "smtp.example.net",
                  "imaps_port": 993, "submissions_port": 465})
    servers = offered_servers(cfg)
    assert [(s.listener, s.host, s.port) for s in servers] == [
        ("imaps", "imap.example.net", 993),
        ("submissions", "smtp.example.net", 465),
        ("submission", "smtp.example.net", 10587),
    ]
    assert first_of(servers, "smtp") == servers[1]
    assert first_of(servers, "pop3") is None


def test_port_zero_uses_the_bound_port_or_is_left_out() -> None:
    cfg = config({"imaps": "127.0.0.1:0", "pop3": "127.0.0.1:0"})
    assert offered_servers(cfg) == []
    servers = offered_servers(cfg, {"imaps": 40993, "pop3": 40110, "http": 8080})
    assert [(s.listener, s.port, s.implicit_tls) for s in servers] == [
        ("imaps", 40993, True), ("pop3", 40110, False)]


def test_the_domain_comes_from_the_address_else_from_the_host_header() -> None:
    cfg = config({})
    assert local_domain_for(cfg, "Alice@EXAMPLE.com", "other.net") == "example.com"
    assert local_domain_for(cfg, "bob@example.org.", None) == "example.org"
    # A foreign address is never answered because of the Host header.
    assert local_domain_for(cfg, "eve@evil.test", "example.com") is None
    assert local_domain_for(cfg, None, "autoconfig.example.com") == "example.com"
    assert local_domain_for(cfg, "", "AUTODISCOVER.Example.Org:8443") == "example.org"
    assert local_domain_for(cfg, None, "example.com.") == "example.com"
    assert local_domain_for(cfg, None, "mail.example.com") is None
    assert local_domain_for(cfg, None, None) is None


def test_malformed_addresses_and_hosts_name_no_domain() -> None:
    for bad in ("no-at-sign", "a@b@example.com", "@example.com", "alice@", "a b@example.com",
                "<alice@example.com>", "x" * 400 + "@example.com"):
        assert domain_of_address(bad) is None, bad
    assert domain_of_host("[::1]:8080") == "::1"
    assert domain_of_host("Example.COM:80") == "example.com"
