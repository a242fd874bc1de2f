"""SMTP replies: a code, an RFC 3463 enhanced status code and human text.

Every error that can reach an SMTP client (or a DSN) is expressed as an :class:`SmtpReply`;
code that refuses something raises :class:`SmtpError` carrying the reply to send.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """One SMTP reply. ``enhanced`` is ``"X.Y.Z"`` or empty when the peer gave none."""

    code: int
    enhanced: str = ""
    text: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    def lines(self) -> list[str]:
        """The reply's text lines, each already prefixed by the enhanced code if any."""
        texts = self.text.split("\n") if self.text else [""]
        prefix = f"{self.enhanced} " if self.enhanced else ""
        return [f"{prefix}{t}".rstrip() for t in texts]

    def render(self) -> bytes:
        """Wire form: ``250-first\\r\\n250 last\\r\\n``."""
        lines = self.lines()
        out = []
        for i, line in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            out.append(f"{self.code}{sep}{line}".rstrip() + "\r\n")
        return "".join(out).encode("utf-8", "replace")

    def __str__(self) -> str:
        return " ".join(f"{self.code} {line}" for line in self.lines()).strip()


class SmtpError(Exception):
    """Raised to refuse something with a specific SMTP reply."""

    def __init__(self, code: int, enhanced: str = "", text: str = "") -> None:
        self.reply = SmtpReply(code, enhanced, text)
        super().__init__(str(self.reply))

    @classmethod
    def from_reply(cls, reply: SmtpReply) -> SmtpError:
        return cls(reply.code, reply.enhanced, reply.text)

    @property
    def temporary(self) -> bool:
        return self.reply.temporary
