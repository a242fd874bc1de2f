"""What the sans-I/O POP3 machine asks of its adapter.

The machine answers most commands itself (it queues reply bytes). It stops and returns one
of these when it needs what only the adapter can do: check a password and open the maildrop,
read a message body, carry out the UPDATE state, switch on TLS, or close the connection. It
parses nothing further until the adapter answers (``Pop3Machine.logged_in`` and friends),
which keeps the replies of pipelined commands in order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Login:
    """USER/PASS or AUTH PLAIN: check the password, lock and snapshot the maildrop; answer
    with ``logged_in(maildrop)`` or ``login_failed(reply)``."""

    username: str
    password: str
    mechanism: str  # "USER" or "PLAIN"


@dataclass(frozen=True, slots=True)
class Fetch:
    """RETR (``lines`` None) or TOP: read the message; answer with ``fetched(body | None)``."""

    number: int
    uid: int
    lines: int | None


@dataclass(frozen=True, slots=True)
class Update:
    """QUIT in the TRANSACTION state: expunge ``deleted``, flag ``seen`` \\Seen; answer with
    ``updated(ok)``. The machine closes afterwards."""

    deleted: tuple[int, ...]
    seen: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StartTls:
    """STLS was accepted and its reply queued: write it, then start TLS; ``discarded`` bytes
    the client pipelined after STLS were thrown away (they were sent in the clear)."""

    discarded: int


@dataclass(frozen=True, slots=True)
class Close:
    """Write what is queued and close the connection."""

    reason: str


Event = Login | Fetch | Update | StartTls | Close
