"""What bounce parsing finds in one message, one record per recipient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BounceKind = Literal["hard", "soft", "complaint", "auto-reply", "delivered", "unknown"]


@dataclass(frozen=True, slots=True)
class BounceRecord:
    recipient: str  # the address that failed (or complained), lower-cased domain
    kind: BounceKind
    reason: str  # category: "user-unknown", "mailbox-full", "host-unknown", "blocked", ...
    status: str = ""  # enhanced status code, e.g. "5.1.1"
    remote_reply: str = ""  # the remote server's reply text, when the report quotes it
    # Where the original message can be recognised: its envelope sender (Return-Path of the
    # returned headers, useful for VERP) and Message-ID, when the report includes them.
    original_sender: str = ""
    original_message_id: str = ""
