"""The results of each sender-authentication check, as values shared by the checks and the
Authentication-Results header (RFC 8601 result names)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DkimVerdict:
    """One DKIM-Signature header checked (RFC 6376, results as in RFC 8601 2.7.1)."""

    result: str  # "pass" | "fail" | "neutral" | "temperror" | "permerror" | "policy"
    domain: str  # d=
    selector: str  # s=
    algorithm: str = ""  # "rsa-sha256", "ed25519-sha256"
    reason: str = ""  # why it is not a pass, for the header comment and the log
    b_prefix: str = ""  # the start of b= (header.b), telling signatures of one domain apart


@dataclass(frozen=True, slots=True)
class ArcVerdict:
    """The ARC chain of a message (RFC 8617): "none" when it has no ARC sets."""

    result: str  # "none" | "pass" | "fail"
    instance: int = 0  # i= of the newest set
    sealer: str = ""  # d= of the newest ARC-Seal
    reason: str = ""
