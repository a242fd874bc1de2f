"""The words ``hayate dns check`` prints about an SPF record's DNS lookups and their fix.

``counted`` lists every term that costs lookups, with its cost and what its queries found,
the terms of an include inside brackets: ``include:_spf.example.net 3 [a 1 (2 addresses),
mx 1 (1 MX host)]``. ``fix_words`` says what :func:`~hayate.dnscheck.spffix.plan_fix`
changed and what the record costs afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

from hayate.dnscheck.spfcount import LOOKUP_LIMIT, VOID_LIMIT, LookupCount, Term
from hayate.dnscheck.spffix import SpfFix


def _term(term: Term) -> str:
    text = f"{term.text} {term.lookups}"
    if term.note:
        text += f" ({term.note})"
    if term.inner:
        text += " [" + ", ".join(_term(t) for t in term.inner) + "]"
    return text


def _voids(terms: Sequence[Term]) -> list[str]:
    out: list[str] = []
    for term in terms:
        if term.inner:
            out.extend(_voids(term.inner))
        elif term.voids:
            out.append(f"{term.text} ({term.note})")
    return out


def totals(count: LookupCount) -> str:
    """``3 of at most 10 DNS lookups, 0 of at most 2 void``."""
    return (f"{count.lookups} of at most {LOOKUP_LIMIT} DNS lookups, "
            f"{count.voids} of at most {VOID_LIMIT} void")


def counted(count: LookupCount) -> str:
    """Every costly term with its cost; void lookups and ignored terms after them."""
    parts = [
        "counted (an IP the record does not list, RFC 7208 4.6.4): "
        + (", ".join(_term(t) for t in count.terms) or "no term that costs a lookup")
    ]
    voids = _voids(count.terms)
    if voids:
        parts.append("void lookups: " + "; ".join(voids))
    if count.ignored:
        parts.append("after all, never evaluated: " + " ".join(count.ignored))
    return "\n".join(parts)


def problems(count: LookupCount) -> list[str]:
    """What makes every receiver give "permerror" (empty when the record is fine)."""
    out: list[str] = []
    if count.lookups > LOOKUP_LIMIT:
        out.append(f"{count.lookups} DNS lookups: more than {LOOKUP_LIMIT} is a permanent "
                   "error for mail from any IP the record does not match early")
    if count.voids > VOID_LIMIT:
        out.append(f"{count.voids} void lookups: more than {VOID_LIMIT} is a permanent error")
    out.extend(f"permanent error: {e}" for e in count.errors)
    return out


def fix_words(fix: SpfFix) -> str:
    changes: list[str] = []
    if fix.flattened:
        changes.append("replace " + ", ".join(fix.flattened) + " by the addresses they "
                       "stand for")
    if fix.removed:
        changes.append("remove " + ", ".join(fix.removed))
    if fix.extra:
        changes.append("keep the addresses in " + ", ".join(r.name for r in fix.extra)
                       + " (the record would be longer than 450 bytes)")
    after = (f"then {fix.lookups} of at most {LOOKUP_LIMIT} lookups, {fix.voids} of at most "
             f"{VOID_LIMIT} void")
    text = "fix: " + "; ".join(changes) + f"; {after}"
    if not fix.enough:
        text += (": not enough; what is left (ptr, exists, macros, includes that are not "
                 "plain address lists, errors in records others publish) must be changed by "
                 "hand")
    if fix.flattened:
        text += (". The addresses are a copy: run this check again when those hosts or "
                 "providers change theirs")
    return text
