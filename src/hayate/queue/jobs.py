"""The scheduler's in-memory values: a message in the active window, its recipients, jobs.

A *job* is one message to a group of recipients that share a destination, a route and an
envelope sender (a VERP return path gives a recipient a job of its own). Jobs wait in a
destination's FIFO, then in a ready queue of a (source, site) path, and end as results.
These are mutable on purpose (counters change as recipients finish); only the scheduler and
its recorder touch them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hayate.core.envelope import domain_of
from hayate.queue.dsn import FailedRecipient


@dataclass(slots=True)
class WindowMessage:
    id: str
    sender: str
    arrival: float
    smtputf8: bool
    body_8bit: bool
    envid: str | None
    ret: str | None
    data: bytes | None
    stream: str  # the stream it is served in (never '': resolved to the default)
    pending: int = 0  # recipients of this message still in the window
    failures: list[FailedRecipient] = field(default_factory=list)
    failed_ids: list[int] = field(default_factory=list)
    headers: bytes | None = None

    @property
    def sender_domain(self) -> str:
        return domain_of(self.sender)


@dataclass(slots=True)
class Rcpt:
    id: int
    address: str
    orig: str | None
    attempts: int


@dataclass(slots=True)
class Job:
    msg: WindowMessage
    route: str
    destination: str
    nexthop: str | None
    rcpts: list[Rcpt]
    sender: str  # envelope sender of this transaction: the message's, or a VERP address

    def split(self, rcpts: list[Rcpt]) -> Job:
        """A job like this one for some of its recipients."""
        return Job(self.msg, self.route, self.destination, self.nexthop, rcpts, self.sender)


@dataclass(frozen=True, slots=True)
class PathInfo:
    """Where a remote job went: for events and log lines."""

    source: str = ""
    site: str = ""
