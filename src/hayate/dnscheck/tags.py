"""Parsers for the small text formats behind DKIM, DMARC, MTA-STS and TLS-RPT records.

``parse_tags`` reads ``tag=value; tag=value`` lists (DKIM RFC 6376 3.2, DMARC RFC 7489 6.4,
MTA-STS and TLS-RPT TXT records); ``parse_sts_policy`` reads an MTA-STS policy file
(RFC 8461 3.2, ``key: value`` lines) and ``mx_pattern_matches`` applies its ``mx:`` patterns.
No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


def parse_tags(text: str) -> list[tuple[str, str]]:
    """``[(tag, value), ...]`` in order; tags lower-cased, values stripped of blanks.

    A piece without "=" becomes ``(piece, "")`` so a checker can report it as malformed.
    """
    out: list[tuple[str, str]] = []
    for piece in text.split(";"):
        if not piece.strip():
            continue
        tag, _, value = piece.partition("=")
        out.append((tag.strip().lower(), value.strip()))
    return out


def tag_value(tags: list[tuple[str, str]], name: str) -> str | None:
    for tag, value in tags:
        if tag == name:
            return value
    return None


def dkim_public_key(text: str) -> str | None:
    """The p= value of a DKIM key record with all blanks removed; None without p=."""
    value = tag_value(parse_tags(text), "p")
    return None if value is None else "".join(value.split())


@dataclass(frozen=True, slots=True)
class StsPolicy:
    """An MTA-STS policy file as published (RFC 8461 3.2); ``problems`` lists what is off."""

    version: str | None
    mode: str | None
    mx: tuple[str, ...]
    max_age: int | None
    problems: tuple[str, ...]


MAX_STS_AGE = 31_557_600  # RFC 8461 3.2: at most one year


def parse_sts_policy(body: str) -> StsPolicy:
    fields: dict[str, str] = {}
    mx: list[str] = []
    problems: list[str] = []
    for raw in body.replace("\r\n", "\n").split("\n"):
        if not raw.strip():
            continue
        key, sep, value = raw.partition(":")
        if not sep:
            problems.append(f"line without 'key: value': {raw.strip()!r}")
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "mx":
            mx.append(value.lower().rstrip("."))
        elif key in fields:
            problems.append(f"{key} given twice")
        else:
            fields[key] = value
    version = fields.get("version")
    mode = fields.get("mode")
    max_age: int | None = None
    if version != "STSv1":
        problems.append(f"version is {version!r}, not 'STSv1'")
    if mode not in ("enforce", "testing", "none"):
        problems.append(f"mode is {mode!r}, not enforce, testing or none")
    age_text = fields.get("max_age")
    if age_text is not None and age_text.isdigit() and len(age_text) <= 10:
        max_age = int(age_text)
        if max_age > MAX_STS_AGE:
            problems.append(f"max_age {max_age} is above the maximum {MAX_STS_AGE}")
    else:
        problems.append(f"max_age is {age_text!r}, not a number of seconds")
    if mode in ("enforce", "testing") and not mx:
        problems.append("no mx lines")
    return StsPolicy(version, mode, tuple(mx), max_age, tuple(problems))


def mx_pattern_matches(pattern: str, host: str) -> bool:
    """RFC 8461 4.1: exact, or ``*.example.com`` matching exactly one more leftmost label."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return pattern == host
