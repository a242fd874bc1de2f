"""Agreement of ``parse_message`` with the labelled bounce corpus (../shared/testdata/bounces).

Scoring, per labelled message (labels are what Sisimai 4.25.15 found):
- a message agrees when every labelled recipient is among our records with the same class:
  softbounce 0 → our kind "hard", 1 → "soft", -1 → "complaint" | "auto-reply" | "delivered";
  and we report no other failed recipient (an extra hard/soft record for an address the label
  does not name is a disagreement: it would suppress or count an address that did not fail);
- a label whose recipient is Sisimai's placeholder (``...@libsisimai.org.invalid``: the report
  hides the recipient) is matched by any record of the same class;
- labels with reason "not-parsed" (Sisimai found nothing) have no answer to agree with: they
  are left out of the ratio and counted apart (how many we still read as a bounce).
Reason agreement (Sisimai's names mapped to ours) is measured over the matched recipients and
printed; it has no threshold.

Run ``python tests/unit/bounces/test_corpus.py --report`` for every disagreement.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.support.corpus import bounce_corpus

from hayate.bounces.message import split_mbox
from hayate.bounces.parse import parse_message
from hayate.bounces.records import BounceRecord

CORPUS = bounce_corpus()
TARGET = 0.95
PLACEHOLDER = "libsisimai.org.invalid"
NEITHER = {"complaint", "auto-reply", "delivered"}

SISIMAI_REASONS = {
    "userunknown": "user-unknown",
    "mailboxfull": "mailbox-full",
    "hostunknown": "host-unknown",
    "blocked": "blocked",
    "filtered": "filtered",
    "rejected": "sender-rejected",
    "expired": "expired",
    "spamdetected": "spam",
    "virusdetected": "virus",
    "policyviolation": "policy",
    "securityerror": "security-error",
    "networkerror": "network-error",
    "mailererror": "mailer-error",
    "systemerror": "system-error",
    "systemfull": "system-full",
    "mesgtoobig": "message-too-big",
    "exceedlimit": "message-too-big",
    "contenterror": "content-error",
    "norelaying": "relay-denied",
    "notaccept": "not-accepted",
    "onhold": "on-hold",
    "suspend": "suspended",
    "syntaxerror": "syntax-error",
    "toomanyconn": "rate-limited",
    "hasmoved": "has-moved",
    "undefined": "undefined",
    "delivered": "delivered",
}


def _class_of_kind(kind: str) -> int | None:
    return {"hard": 0, "soft": 1}.get(kind, -1 if kind in NEITHER else None)


def _reason_agrees(label_reason: str, record: BounceRecord) -> bool:
    if label_reason == "feedback":
        return record.kind == "complaint"
    if label_reason == "vacation":
        return record.kind == "auto-reply"
    return SISIMAI_REASONS.get(label_reason) == record.reason


@dataclass
class Score:
    messages: int = 0
    agreed: int = 0
    not_parsed: int = 0
    not_parsed_found: int = 0
    reasons: int = 0
    reasons_agreed: int = 0
    seconds: float = 0.0
    disagreements: list[str] = field(default_factory=list)
    reason_misses: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.agreed / self.messages if self.messages else 0.0

    @property
    def reason_ratio(self) -> float:
        return self.reasons_agreed / self.reasons if self.reasons else 0.0


def _describe(records: list[BounceRecord]) -> str:
    return "; ".join(f"{r.recipient or '-'} {r.kind} {r.reason} {r.status}" for r in records)


def score_corpus(corpus: Path = CORPUS) -> Score:
    labels: dict[str, list[dict[str, object]]] = json.loads((corpus / "labels.json").read_text())
    score = Score()
    for name in sorted(labels):
        data = (corpus / name).read_bytes()
        started = time.perf_counter()
        records = [r for one in split_mbox(data) for r in parse_message(one)]
        score.seconds += time.perf_counter() - started
        wanted = labels[name]
        if any(w.get("reason") == "not-parsed" for w in wanted):
            score.not_parsed += 1
            if any(r.kind in ("hard", "soft") for r in records):
                score.not_parsed_found += 1
            continue
        score.messages += 1
        by_rcpt = {r.recipient: r for r in records}
        problems: list[str] = []
        named: set[str] = set()
        for w in wanted:
            rcpt = str(w.get("recipient") or "").lower()
            klass = w.get("softbounce")
            if rcpt.endswith(PLACEHOLDER):
                match = next((r for r in records if _class_of_kind(r.kind) == klass), None)
            else:
                named.add(rcpt)
                match = by_rcpt.get(rcpt)
            if match is None or _class_of_kind(match.kind) != klass:
                problems.append(f"want {rcpt} class={klass} ({w.get('reason')} {w.get('status')})")
            if match is not None:
                score.reasons += 1
                if _reason_agrees(str(w.get("reason")), match):
                    score.reasons_agreed += 1
                else:
                    score.reason_misses.append(
                        f"{name}: {rcpt} want {w.get('reason')} ({w.get('status')}) "
                        f"got {match.reason} ({match.status}) | {match.remote_reply[:150]}"
                    )
        placeholder_only = all(str(w.get("recipient") or "").endswith(PLACEHOLDER) for w in wanted)
        extras = [
            r
            for r in records
            if r.kind in ("hard", "soft") and r.recipient not in named and not placeholder_only
        ]
        if extras:
            problems.append("extra " + _describe(extras))
        if problems:
            score.disagreements.append(
                f"{name}: {' | '.join(problems)} || got {_describe(records)}"
            )
        else:
            score.agreed += 1
    return score


def _summary(score: Score) -> str:
    return (
        f"bounce corpus: {score.agreed}/{score.messages} messages agree on recipient and "
        f"hard/soft ({score.ratio:.1%}); reason agreement {score.reasons_agreed}/{score.reasons} "
        f"({score.reason_ratio:.1%}); not-parsed labels: {score.not_parsed} "
        f"(we read {score.not_parsed_found} as bounces); parse time {score.seconds * 1000:.0f} ms "
        f"for {score.messages + score.not_parsed} messages"
    )


@pytest.fixture(scope="module")
def corpus_score() -> Score:
    if not (CORPUS / "labels.json").is_file():
        pytest.skip(f"bounce corpus not found at {CORPUS}")
    return score_corpus()


def test_corpus_agreement_meets_target(corpus_score: Score) -> None:
    print(_summary(corpus_score))
    assert corpus_score.messages > 250
    assert corpus_score.ratio >= TARGET, "\n".join(corpus_score.disagreements)


def test_corpus_parses_fast(corpus_score: Score) -> None:
    per_message = corpus_score.seconds / max(1, corpus_score.messages + corpus_score.not_parsed)
    assert per_message < 0.005, f"{per_message * 1000:.2f} ms per message"


def test_reason_agreement_is_reported(corpus_score: Score) -> None:
    # No target: this guards against a regression that would make categories meaningless.
    assert corpus_score.reason_ratio >= 0.6, "\n".join(corpus_score.reason_misses)


if __name__ == "__main__":
    result = score_corpus()
    if "--report" in sys.argv:
        print("\n".join(result.disagreements))
        if "--reasons" in sys.argv:
            print("\n-- reason misses --")
            print("\n".join(result.reason_misses))
    print(_summary(result))
