"""SPF record text (RFC 7208), read and rewritten without evaluating it.

What ``hayate dns check`` needs beside the evaluation itself (which is
:func:`hayate.auth.spf.check_spf`): pick the ``v=spf1`` records out of a TXT set, find the
``all`` mechanism's qualifier, and suggest a record that adds our addresses while keeping
every existing mechanism. No I/O. (What a record costs in DNS lookups is
:mod:`~hayate.dnscheck.spfcount`.)
"""

from __future__ import annotations

import ipaddress

from hayate.auth.spf import is_spf_record

_QUALIFIERS = "+-~?"


def spf_records(txts: list[str]) -> list[str]:
    """The TXT strings that are SPF records ("v=spf1" alone or followed by a space)."""
    return [" ".join(t.split()) for t in txts if is_spf_record(t.strip())]


def _split(term: str) -> tuple[str, str, str]:
    """(qualifier, mechanism or modifier name, argument) of one term."""
    qualifier = "+"
    if term[:1] and term[0] in _QUALIFIERS:
        qualifier, term = term[0], term[1:]
    for sep in (":", "=", "/"):
        name, found, arg = term.partition(sep)
        if found and "".join(c for c in name if c.isalnum() or c in "-_.") == name:
            if sep == "/":
                return qualifier, name.lower(), "/" + arg
            return qualifier, name.lower() + ("=" if sep == "=" else ""), arg
    return qualifier, term.lower(), ""


def all_qualifier(record: str) -> str | None:
    """"-", "~", "?" or "+" of the ``all`` mechanism; None when the record has none."""
    for term in record.split()[1:]:
        qualifier, name, _ = _split(term)
        if name == "all":
            return qualifier
    return None


def redirect_target(record: str) -> str | None:
    for term in record.split()[1:]:
        _, name, arg = _split(term)
        if name == "redirect=":
            return arg
    return None


def ip_mechanism(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return f"ip{address.version}:{address.compressed}"


def suggest_new(ips: list[str]) -> str:
    """A fresh record: ``v=spf1 ip4:... ip6:... -all``."""
    terms = ["v=spf1"]
    terms.extend(ip_mechanism(ip) for ip in ips)
    terms.append("-all")
    return " ".join(terms)


def suggest_with(record: str, ips: list[str]) -> str:
    """``record`` with ``ip4:``/``ip6:`` terms for ``ips`` first (so they match before any
    other term can fail), every existing mechanism kept; a missing, ``+all`` or ``?all``
    ending becomes ``~all`` (unless a ``redirect=`` decides instead)."""
    terms = record.split()
    present = {t.lower() for t in terms}
    added = [m for m in (ip_mechanism(ip) for ip in ips) if m not in present]
    rest: list[str] = []
    for term in terms[1:]:
        qualifier, name, _ = _split(term)
        if name == "all" and qualifier in "+?":
            continue
        rest.append(term)
    out = ["v=spf1", *added, *rest]
    if all_qualifier(" ".join(out)) is None and redirect_target(record) is None:
        out.append("~all")
    return " ".join(out)
