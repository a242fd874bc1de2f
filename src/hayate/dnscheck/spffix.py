"""The record to publish when an SPF record breaks the lookup limits: the smallest exact change.

Given what :mod:`~hayate.dnscheck.spfcount` counted, :func:`plan_fix` rewrites the record so
that an evaluation needs at most 10 lookup terms and at most 2 void lookups, and reaches no
permanent error:

1. a term that can only fail — an ``include:`` or ``redirect=`` of a name without exactly
   one SPF record, or a loop — is removed (every receiver gives permerror for it now); one
   deeper down, in a record someone else publishes, cannot be repaired here, and the fix
   says it is not enough;
2. an ``mx`` with more than 10 MX hosts is replaced by its hosts' addresses;
3. then, while the record costs too much, a term is *flattened* — the one that alone brings
   the count within the limit while copying the fewest addresses, else the one that saves
   most — that is, replaced in place by the ``ip4:``/``ip6:`` terms that match
   exactly the same clients (its own qualifier kept). Only terms whose matching set is a plain
   union of addresses qualify: ``a``, ``mx``, and includes/redirects whose records hold only
   such terms (no ``ptr``, ``exists``, macros, or non-pass ranges before their ``all``).
   A void ``a``/``mx``/``exists`` whose name has no address at all is removed instead;
4. a record longer than 450 bytes (RFC 7208 3.4: it must fit a UDP answer) keeps its
   flattened pass terms in sub-records ``_spf1.<domain>``, ``_spf2.<domain>``, … reached by
   one ``include:`` each (which costs one lookup each).

Flattened addresses are a copy: when a provider changes its addresses the record must be
written again, which is what running ``hayate dns check`` again shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hayate.dnscheck.results import Record
from hayate.dnscheck.spfcount import LOOKUP_LIMIT, VOID_LIMIT, LookupCount, Term

SIZE_LIMIT = 450  # bytes of a record (RFC 7208 3.4)


@dataclass(frozen=True, slots=True)
class SpfFix:
    record: str  # the new record for the domain
    extra: tuple[Record, ...]  # sub-records that go with it (_spf1.<domain>, ...)
    flattened: tuple[str, ...]  # terms replaced by their addresses
    removed: tuple[str, ...]  # terms dropped (broken, or void with no address)
    lookups: int  # lookup terms of the new record (sub-record includes counted)
    voids: int
    enough: bool  # the new record is within every limit


def needs_fix(count: LookupCount) -> bool:
    return (count.lookups > LOOKUP_LIMIT or count.voids > VOID_LIMIT
            or any(t.broken for t in count.terms))


def plan_fix(domain: str, record: str, count: LookupCount) -> SpfFix:
    """The smallest rewrite of ``record`` that is within the limits (see the docstring)."""
    removed = [t for t in count.terms if t.broken and t.networks is None]
    chosen = [t for t in count.terms if t.broken and t.networks is not None]
    while True:
        kept = [t for t in count.terms if t not in removed and t not in chosen]
        fix = _layout(domain, record, count.terms, chosen, removed)
        if fix.lookups <= LOOKUP_LIMIT and fix.voids <= VOID_LIMIT:
            return fix
        pick = _best(kept, over=fix.lookups - LOOKUP_LIMIT)
        if pick is None:
            return fix
        if not pick.networks:
            removed.append(pick)  # it matches nobody: nothing to keep
        else:
            chosen.append(pick)


def _best(terms: Sequence[Term], *, over: int) -> Term | None:
    """The next term to flatten or drop, when ``over`` lookups (or void ones) too many.

    Over the lookup limit: the term that alone brings the count within it while copying the
    fewest addresses; when none does, the one that saves most. Only void lookups over:
    the term with most of them.
    """
    candidates = [t for t in terms if t.networks is not None or _removable(t)]
    if over <= 0:  # only the void lookups are over: a term without any does not help
        candidates = [t for t in candidates if t.voids]
        return max(candidates, key=lambda t: (t.voids, t.lookups), default=None)
    enough = [t for t in candidates if t.lookups >= over]
    if enough:
        return min(enough, key=lambda t: (len(t.networks or ()), t.lookups, -t.voids))
    return max(candidates, key=lambda t: (t.lookups, t.voids), default=None)


def _removable(term: Term) -> bool:
    """A void ``exists`` of a fixed name never matches: dropping it changes nothing."""
    return term.kind == "exists" and term.voids > 0 and "%" not in term.text


def _layout(domain: str, record: str, terms: Sequence[Term], chosen: Sequence[Term],
            removed: Sequence[Term]) -> SpfFix:
    """The record with ``chosen`` flattened and ``removed`` dropped, split when too long."""
    by_text: dict[str, list[Term]] = {}
    for term in terms:
        by_text.setdefault(term.text.lower(), []).append(term)
    out: list[str] = []
    moved: list[str] = []  # flattened pass terms, in order (candidates for sub-records)
    first_moved = -1
    for token in record.split():
        queue = by_text.get(token.lower())
        found = queue.pop(0) if queue else None
        if found is None or (found not in chosen and found not in removed):
            out.append(token)
            continue
        if found in removed:
            continue
        term = found
        prefix = "" if term.qualifier == "+" else term.qualifier
        for network in term.networks or ():
            value = prefix + network
            if value in out or value in moved:
                continue
            if prefix:
                out.append(value)
            else:
                if first_moved < 0:
                    first_moved = len(out)
                moved.append(value)
                out.append(value)
        if term.kind == "redirect" and term.all_term:
            out.append(term.all_term)
    extra: list[Record] = []
    text = " ".join(out)
    if len(text.encode()) > SIZE_LIMIT and moved:
        out = [t for t in out if t not in moved]
        includes = []
        for n, chunk in enumerate(_chunks(moved), start=1):
            name = f"_spf{n}.{domain}"
            extra.append(Record(name, "TXT", "v=spf1 " + " ".join(chunk)))
            includes.append(f"include:{name}")
        out[first_moved:first_moved] = includes
        text = " ".join(out)
    left = [t for t in terms if t not in chosen and t not in removed]
    return SpfFix(
        record=text,
        extra=tuple(extra),
        flattened=tuple(t.text for t in chosen),
        removed=tuple(t.text for t in removed),
        lookups=sum(t.lookups for t in left) + len(extra),
        voids=sum(t.voids for t in left),
        enough=(sum(t.lookups for t in left) + len(extra) <= LOOKUP_LIMIT
                and sum(t.voids for t in left) <= VOID_LIMIT
                and not any(_broken_inside(t) for t in left)),
    )


def _broken_inside(term: Term) -> bool:
    """A permerror this record cannot repair: it is in a record that someone else owns."""
    return term.broken or any(_broken_inside(t) for t in term.inner)


def _chunks(terms: Sequence[str]) -> list[list[str]]:
    """``terms`` cut into groups whose "v=spf1 ..." record stays within SIZE_LIMIT bytes."""
    groups: list[list[str]] = [[]]
    size = len("v=spf1")
    for term in terms:
        if groups[-1] and size + 1 + len(term) > SIZE_LIMIT:
            groups.append([])
            size = len("v=spf1")
        groups[-1].append(term)
        size += 1 + len(term)
    return groups
