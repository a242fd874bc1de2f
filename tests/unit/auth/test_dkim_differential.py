"""Our DKIM verifier against dkimpy's on the same messages, keys served by a real DNS server.

Varied messages (folded, duplicated and many headers, odd whitespace, empty bodies, bodies
without a final CRLF, 8-bit text) are signed by dkimpy (all four canonicalizations, rsa and
ed25519, l=, over-signed and absent header names) and by Hayate's signer, then changed the
ways mail gets changed on its way (see ``dkim_corpus.MUTATIONS``). For every signature of
every version, as SMTP delivers it, ``verify_dkim`` passes exactly when dkimpy passes. A
hypothesis test does the same with random whitespace, folding and header-name changes.
(OpenDKIM as a signer is in tests/integration/auth/test_dkim_opendkim_differential.py.)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.dnsserver import TestDnsServer
from tests.unit.auth.dkim_corpus import (
    CANONICALIZATIONS,
    DOMAIN,
    MUTATIONS,
    corpus,
    delivered,
    dkimpy_passes,
    dkimpy_records,
    dkimpy_sign,
    hayate_sign,
    key_zone,
    make_keys,
    ours,
    random_h,
)

from hayate.auth.dkim_verify import verify_dkim
from hayate.dns import CachingResolver

KEYS = make_keys()
RECORDS = dkimpy_records(KEYS)
MESSAGES = corpus(6376, 48)


def _signed_corpus() -> list[tuple[str, bytes]]:
    out = []
    for i, message in enumerate(MESSAGES):
        rng = random.Random(i)
        key = KEYS["ed25519" if i % 3 else "rsa"]
        canon = CANONICALIZATIONS[i % 4]
        length = i % 5 == 0
        label = f"dkimpy-{i}-{key.algorithm}-{canon[0]}/{canon[1]}{'-l' if length else ''}"
        out.append((label, dkimpy_sign(message, key, canon, random_h(rng, message), length)))
    for i, message in enumerate(MESSAGES[:12]):
        keys = [KEYS["rsa"], KEYS["ed25519"]][: 1 + i % 2] if i % 3 else [KEYS["ed25519"]]
        label = f"hayate-{i}-{'+'.join(k.algorithm for k in keys)}"
        out.append((label, hayate_sign(message, *keys)))
    # Two signers one above the other: dkimpy relaxed over a Hayate signature.
    message = hayate_sign(MESSAGES[0], KEYS["ed25519"])
    out.append(("hayate+dkimpy", dkimpy_sign(message, KEYS["rsa"], ("relaxed", "relaxed"),
                                             [b"from", b"subject", b"dkim-signature"])))
    return out


SIGNED = _signed_corpus()


@pytest.fixture(scope="module")
def dns_server() -> Iterator[TestDnsServer]:
    with TestDnsServer({DOMAIN: key_zone(KEYS)}) as server:
        yield server


@pytest.fixture(scope="module")
def resolver(dns_server: TestDnsServer) -> CachingResolver:
    return CachingResolver([dns_server.address], timeout=2.0)


@pytest.mark.parametrize("index", range(len(SIGNED)), ids=[label for label, _ in SIGNED])
async def test_agrees_with_dkimpy_under_every_mutation(
    resolver: CachingResolver, index: int
) -> None:
    _, signed = SIGNED[index]
    assert all(dkimpy_passes(signed, RECORDS)), "the unchanged message must pass"
    disagreements = []
    for name, mutate in MUTATIONS.items():
        changed = delivered(mutate(signed))
        theirs = dkimpy_passes(changed, RECORDS)
        mine = await ours(changed, resolver)
        if mine != theirs:
            disagreements.append(f"{name}: ours {mine}, dkimpy {theirs}")
    assert not disagreements, disagreements


async def test_the_mutations_do_decide_something(resolver: CachingResolver) -> None:
    """Over the corpus, the mutations give the top signatures passes and failures as
    expected, so the agreement above is not vacuous: some changes never matter (empty lines
    at the end, an unsigned header), some always break a signature, the rest depend on c=,
    h= and l=."""
    outcomes: dict[str, set[bool]] = {name: set() for name in MUTATIONS}
    for _, signed in SIGNED:
        for name, mutate in MUTATIONS.items():
            top, *_ = await ours(delivered(mutate(signed)), resolver)
            outcomes[name].add(top)
    always_pass = {"none", "unsigned header on top", "body empty lines appended"}
    always_fail = {"b= corrupted", "From added on top"}
    for name, seen in outcomes.items():
        if name in always_pass:
            assert seen == {True}, name
        elif name in always_fail:
            assert seen == {False}, name
        else:
            assert seen == {True, False}, name


BASE = (b"From: Alice <alice@example.test>\r\nTo: bob@example.net\r\n"
        b"Subject: the  quarterly\treport\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        b"\r\nThe numbers  are in.\r\n\r\nRegards\r\n")

# mutation -> (passes under simple, passes under relaxed) for the header or body part it changes
TOLERANCE = {
    "header spaces doubled": ("header", False, True),
    "header name case": ("header", False, True),
    "space after colon": ("header", False, True),
    "body trailing blanks": ("body", False, True),
    "body spaces doubled": ("body", False, True),
    "body empty lines appended": ("body", True, True),
    "Subject added on top": ("header", True, True),
    "Subject added at bottom": ("header", False, False),
    "From added on top": ("header", False, False),
}


@pytest.mark.parametrize("canon", CANONICALIZATIONS, ids="/".join)
@pytest.mark.parametrize("mutation", sorted(TOLERANCE))
async def test_what_each_canonicalization_tolerates(
    resolver: CachingResolver, canon: tuple[str, str], mutation: str
) -> None:
    part, simple_ok, relaxed_ok = TOLERANCE[mutation]
    algorithm = canon[0] if part == "header" else canon[1]
    expected = relaxed_ok if algorithm == "relaxed" else simple_ok
    signed = dkimpy_sign(BASE, KEYS["ed25519"], canon, [b"from", b"to", b"subject", b"date"])
    changed = MUTATIONS[mutation](signed)
    (verdict,) = await verify_dkim(changed, resolver)
    assert (verdict.result == "pass") == expected, verdict
    assert dkimpy_passes(changed, RECORDS) == [expected]


async def test_l_tag_lets_appended_text_pass(resolver: CachingResolver) -> None:
    signed = dkimpy_sign(BASE, KEYS["rsa"], ("relaxed", "relaxed"), [b"from"], length=True)
    changed = signed + b"Click here: http://evil.test/\r\n"
    (verdict,) = await verify_dkim(changed, resolver)
    assert verdict.result == "pass"  # as RFC 6376 says; the risk is in the docstring
    shorter = signed[: -len(b"Regards\r\n")]
    (verdict,) = await verify_dkim(shorter, resolver)
    assert (verdict.result, verdict.reason) == ("fail", "body is shorter than l=")


# -- random whitespace and header changes (hypothesis) ----------------------------------

HYPO_SIGNED = [
    dkimpy_sign(message, KEYS["ed25519"], canon, [b"from", b"to", b"subject", b"cc", b"x-dup"])
    for message, canon in zip(MESSAGES[:8], CANONICALIZATIONS * 2, strict=True)
] + [hayate_sign(MESSAGES[8], KEYS["ed25519"])]

_OPS = ["insert", "fold", "unfold", "trailing", "name case", "blank line end", "delete wsp"]
_WSP = [b" ", b"\t", b"  ", b" \t"]


def _change_body(body: bytes, op: str, line_pick: int, column_pick: int, space: bytes) -> bytes:
    lines = body.split(b"\r\n")
    k = line_pick % len(lines)
    line = lines[k]
    if op == "insert":
        col = column_pick % (len(line) + 1)
        lines[k] = line[:col] + space + line[col:]
    else:  # "delete wsp"
        blanks = [j for j in range(len(line)) if line[j : j + 1] in (b" ", b"\t")]
        if blanks:
            j = blanks[column_pick % len(blanks)]
            lines[k] = line[:j] + line[j + 1 :]
    return b"\r\n".join(lines)


def _apply(message: bytes, op: str, line_pick: int, column_pick: int, wsp: int) -> bytes:
    """One change to ``message``; header changes stay inside field values (never before a
    colon or at the start of a line), so both parsers still see the same fields. "insert"
    and "delete wsp" change the body instead when ``wsp`` is odd."""
    head, body = message.split(b"\r\n\r\n", 1)
    space = _WSP[wsp % len(_WSP)]
    if op == "blank line end":
        return message + b"\r\n" * (1 + wsp % 3)
    if op in ("insert", "delete wsp") and wsp % 2:
        return head + b"\r\n\r\n" + _change_body(body, op, line_pick, column_pick, space)
    lines = head.split(b"\r\n")
    i = line_pick % len(lines)
    line = lines[i]
    start = 1 if line[:1] in (b" ", b"\t") else line.index(b":") + 1
    if op == "insert":
        col = start + column_pick % (len(line) - start + 1)
        lines[i] = line[:col] + space + line[col:]
    elif op == "fold":
        gaps = [j for j in range(start, len(line)) if line[j : j + 1] == b" "]
        if gaps:
            j = gaps[column_pick % len(gaps)]
            lines[i] = line[:j] + b"\r\n" + space + line[j + 1 :]
    elif op == "unfold":
        continued = [j for j in range(1, len(lines)) if lines[j][:1] in (b" ", b"\t")]
        if continued:
            j = continued[line_pick % len(continued)]
            lines[j - 1 : j + 1] = [lines[j - 1] + lines[j]]
    elif op == "trailing":
        lines[i] = line + space
    elif op == "name case" and start > 1:
        name = line[: start - 1]
        lines[i] = (name.upper() if name != name.upper() else name.lower()) + line[start - 1 :]
    elif op == "delete wsp":
        blanks = [j for j in range(start + 1, len(line)) if line[j : j + 1] in (b" ", b"\t")]
        if blanks:
            j = blanks[column_pick % len(blanks)]
            lines[i] = line[:j] + line[j + 1 :]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@settings(max_examples=250, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.integers(0, len(HYPO_SIGNED) - 1),
    changes=st.lists(
        st.tuples(st.sampled_from(_OPS), st.integers(0, 10_000), st.integers(0, 10_000),
                  st.integers(0, 7)),
        min_size=1, max_size=4,
    ),
)
def test_random_whitespace_changes_agree(
    loop: asyncio.AbstractEventLoop, resolver: CachingResolver,
    which: int, changes: list[tuple[str, int, int, int]],
) -> None:
    message = HYPO_SIGNED[which]
    for op, line_pick, column_pick, wsp in changes:
        message = _apply(message, op, line_pick, column_pick, wsp)
    message = delivered(message)
    mine = loop.run_until_complete(ours(message, resolver))
    assert mine == dkimpy_passes(message, RECORDS), message
