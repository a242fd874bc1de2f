"""Password guessing limits shared by the IMAP and POP3 listeners of one process.

A :class:`LoginGuard` counts login attempts per account address and per client IP in a
sliding window (``[mailbox] auth_failure_window``) with two
:class:`~hayate.core.ratelimit.FailureLimiter`\\ s. Strategy, as for the HTTP password
change:

- :meth:`LoginGuard.begin` counts the attempt as a failure *before* the password is checked,
  so that guesses sent in parallel over many connections cannot all pass; it returns False
  (refuse without checking the password) once the address or the IP already has its
  maximum within the window.
- :meth:`LoginGuard.succeeded` forgets the address's failures and takes back the attempt
  counted for the IP.
- Clients in ``[mailbox] trusted_networks`` (a webmail logging in for all its users) have no
  per-IP limit; the per-address limit still holds.

``shared_login_guard(config)`` is the process-wide guard for a ``[mailbox]`` config: every
IMAP and POP3 listener of the process built from the same settings counts together. Counts
live in memory only; each worker process counts its own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from hayate.config import MailboxConfig
from hayate.core.ratelimit import FailureLimiter
from hayate.core.seams import Clock, SystemClock


class LoginGuard:
    """Failed logins per address and per client IP; see the module docstring."""

    __slots__ = ("by_address", "by_ip", "trusted")

    def __init__(self, per_address: int, per_ip: int, window: float, clock: Clock,
                 trusted: Sequence[str] = ()) -> None:
        self.by_address = FailureLimiter(per_address, window, clock)
        self.by_ip = FailureLimiter(per_ip, window, clock)
        self.trusted = tuple(ipaddress.ip_network(net, strict=False) for net in trusted)

    def _ip_key(self, ip: str) -> str | None:
        """The per-IP key, or None for a trusted client (not limited per IP)."""
        if self.trusted:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                return ip
            if any(address in net for net in self.trusted):
                return None
        return ip

    @staticmethod
    def _address_key(address: str) -> str:
        return address.strip().lower()[:320]

    def begin(self, address: str, ip: str) -> bool:
        """Count one attempt; False when the address or the IP is over its limit (then
        nothing is counted and the password must not be checked)."""
        key, ip_key = self._address_key(address), self._ip_key(ip)
        if self.by_address.retry_after(key) > 0:
            return False
        if ip_key is not None and self.by_ip.retry_after(ip_key) > 0:
            return False
        self.by_address.note_failure(key)
        if ip_key is not None:
            self.by_ip.note_failure(ip_key)
        return True

    def succeeded(self, address: str, ip: str) -> None:
        """The attempt counted by ``begin`` had the right password."""
        self.by_address.reset(self._address_key(address))
        ip_key = self._ip_key(ip)
        if ip_key is not None:
            self.by_ip.forgive(ip_key)

    def abandon(self, address: str, ip: str) -> None:
        """The attempt counted by ``begin`` could not be checked (the store failed)."""
        self.by_address.forgive(self._address_key(address))
        ip_key = self._ip_key(ip)
        if ip_key is not None:
            self.by_ip.forgive(ip_key)


_SHARED: dict[tuple[int, int, float, tuple[str, ...]], LoginGuard] = {}


def login_guard_for(config: MailboxConfig, clock: Clock | None = None) -> LoginGuard:
    """A new guard with the limits of ``config`` (tests use one per server)."""
    return LoginGuard(config.max_auth_failures_per_address, config.max_auth_failures_per_ip,
                      config.auth_failure_window, clock or SystemClock(),
                      config.trusted_networks)


def shared_login_guard(config: MailboxConfig) -> LoginGuard:
    """The guard every IMAP and POP3 listener of this process with these limits shares."""
    key = (config.max_auth_failures_per_address, config.max_auth_failures_per_ip,
           config.auth_failure_window, tuple(config.trusted_networks))
    guard = _SHARED.get(key)
    if guard is None:
        guard = _SHARED[key] = login_guard_for(config)
    return guard
