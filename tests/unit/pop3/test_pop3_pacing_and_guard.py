"""The POP3 machine parses at most ``limit`` pipelined lines per turn; the login guard
shared by IMAP and POP3 counts attempts per address and per client IP in a window."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tests.support.clock import FakeClock

from hayate.config import MailboxConfig
from hayate.mailbox.login_guard import LoginGuard, shared_login_guard
from hayate.pop3 import wire as W
from hayate.pop3.protocol import MachineConfig, Pop3Machine


def test_next_event_stops_after_limit_lines_and_goes_on() -> None:
    machine = Pop3Machine(MachineConfig())
    machine.receive(b"NOOP\r\n" * 5 + b"NO")
    assert machine.next_event(2) is None
    assert machine.line_ready
    assert machine.data_to_send().count(b"\r\n") == 2
    assert machine.next_event(10) is None
    assert not machine.line_ready  # only "NO" without its line end is left
    assert machine.data_to_send().count(b"\r\n") == 3
    machine.receive(b"OP\r\n")
    assert machine.next_event(1) is None
    assert machine.data_to_send() == W.NOT_LOGGED_IN  # one more answer, counted once


def test_guard_limits_an_address_until_the_window_passes() -> None:
    clock = FakeClock()
    guard = LoginGuard(per_address=2, per_ip=100, window=60.0, clock=clock)
    assert guard.begin("Amy@Example.test", "192.0.2.1")
    assert guard.begin("amy@example.test", "192.0.2.2")
    assert not guard.begin("AMY@example.test", "192.0.2.3")  # any case, any IP
    assert guard.begin("bob@example.test", "192.0.2.1")
    clock.advance(61.0)
    assert guard.begin("amy@example.test", "192.0.2.1")


def test_guard_limits_an_ip_and_success_resets_the_address() -> None:
    guard = LoginGuard(per_address=2, per_ip=3, window=60.0, clock=FakeClock())
    assert guard.begin("a@x.test", "192.0.2.9")
    guard.succeeded("a@x.test", "192.0.2.9")  # the IP's attempt is taken back
    assert guard.begin("a@x.test", "192.0.2.9")
    assert guard.begin("a@x.test", "192.0.2.9")
    guard.succeeded("a@x.test", "192.0.2.9")
    assert guard.begin("a@x.test", "192.0.2.9")  # the address starts again
    assert guard.begin("b@x.test", "192.0.2.9")
    assert not guard.begin("c@x.test", "192.0.2.9")  # three failures from the IP
    guard.abandon("b@x.test", "192.0.2.9")
    assert guard.begin("c@x.test", "192.0.2.9")


def test_listeners_with_the_same_limits_share_one_guard() -> None:
    config = MailboxConfig(max_auth_failures_per_address=7)
    assert shared_login_guard(config) is shared_login_guard(config.model_copy())
    assert shared_login_guard(config) is not shared_login_guard(MailboxConfig())


def test_trusted_networks_have_no_per_ip_limit_but_addresses_still_do() -> None:
    guard = LoginGuard(per_address=2, per_ip=2, window=60.0, clock=FakeClock(),
                       trusted=["127.0.0.0/8", "2001:db8::/32"])
    for user in ("a", "b", "c", "d"):  # a webmail on this host, failing for many users
        assert guard.begin(f"{user}@x.test", "127.0.0.1")
    assert guard.begin("a@x.test", "127.0.0.1")
    assert not guard.begin("a@x.test", "127.0.0.1")  # a's own limit holds
    assert guard.begin("e@x.test", "2001:db8::5")
    assert guard.begin("f@x.test", "192.0.2.1")
    assert guard.begin("g@x.test", "192.0.2.1")
    assert not guard.begin("h@x.test", "192.0.2.1")  # an untrusted IP is limited


def test_trusted_networks_are_checked_in_the_config() -> None:
    assert MailboxConfig(trusted_networks=["127.0.0.1/32"]).trusted_networks == ["127.0.0.1/32"]
    with pytest.raises(ValidationError, match="not an IP network"):
        MailboxConfig(trusted_networks=["localhost"])
