"""A driver for the sans-I/O SMTP machine: feeds bytes, answers its events, collects replies.

The answers come from a tiny in-test policy and sink (our own seams, not a fake peer):
accounts ``user@example.test`` / ``secret``; sender ``bad@x.test`` and recipient
``nobody@y.test`` are refused; recipient ``noenh@y.test`` is refused by a reply without an
enhanced code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hayate.core.reply import SmtpReply
from hayate.smtp.events import (
    Authenticate,
    CheckRecipient,
    CheckSender,
    Close,
    Event,
    MessageReceived,
    StartTls,
)
from hayate.smtp.protocol import MachineConfig, SmtpMachine

QUEUED = SmtpReply(250, "2.0.0", "Ok: queued as TEST")
ACCOUNTS = {("user@example.test", "secret"): "user@example.test"}


class Driver:
    def __init__(
        self,
        cfg: MachineConfig,
        tls: bool = False,
        auto_tls: bool = True,
        sink_reply: SmtpReply = QUEUED,
    ) -> None:
        self.m = SmtpMachine(cfg, tls=tls)
        self.auto_tls = auto_tls
        self.sink_reply = sink_reply
        self.events: list[Event] = []
        self.messages: list[MessageReceived] = []
        self.closed: str | None = None

    def send(self, *chunks: bytes) -> bytes:
        """Feed each chunk in turn; return every reply byte written meanwhile."""
        out = []
        for chunk in chunks:
            ev = self.m.feed(chunk)
            while ev is not None:
                self.answer(ev)
                if isinstance(ev, StartTls):
                    out.append(self.m.data_to_send())
                    if not self.auto_tls:
                        break
                    self.m.tls_started()
                ev = self.m.next_event()
            out.append(self.m.data_to_send())
        return b"".join(out)

    def answer(self, ev: Event) -> None:
        self.events.append(ev)
        m = self.m
        if isinstance(ev, CheckSender):
            refused = ev.sender == "bad@x.test"
            m.sender_checked(SmtpReply(550, "5.7.1", "Sender refused") if refused else None)
        elif isinstance(ev, CheckRecipient):
            if ev.recipient == "nobody@y.test":
                m.recipient_checked(SmtpReply(550, "5.1.1", "User unknown"))
            elif ev.recipient == "noenh@y.test":
                m.recipient_checked(SmtpReply(550, "", "no code"))
            else:
                m.recipient_checked(None)
        elif isinstance(ev, Authenticate):
            m.auth_checked(ACCOUNTS.get((ev.username, ev.password)))
        elif isinstance(ev, MessageReceived):
            self.messages.append(ev)
            m.message_handled(self.sink_reply)
        elif isinstance(ev, Close):
            self.closed = ev.reason


MX = MachineConfig(hostname="mx.test")
SUBMISSION = MachineConfig(
    hostname="mx.test",
    auth_enabled=True,
    auth_requires_tls=True,
    require_auth=True,
    starttls_available=True,
)


@pytest.fixture
def make_driver() -> Callable[..., Driver]:
    def make(cfg: MachineConfig = MX, **kwargs: Any) -> Driver:
        return Driver(cfg, **kwargs)

    return make
