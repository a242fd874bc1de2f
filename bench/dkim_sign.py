"""Micro-benchmark of DKIM signing: what one signature costs, and how much of it is ours.

For a message of SIZE bytes (default 2 KB, headers like a real submission) it times, each
as the best median of a few rounds:

- ``raw``: the private-key operation alone (``cryptography``: RSA-2048 PKCS#1 v1.5 over a
  prehashed digest, or Ed25519 over 32 bytes) — the floor;
- ``hayate``: ``DkimSigner.sign`` for the whole message (parse, canonicalize, hash, sign,
  fold) — the difference to ``raw`` is our Python overhead (target: well under 0.1 ms);
- ``filter``: the ingest filter (``DkimSigningFilter``) around it: From domain, key lookup,
  prepend;
- ``dkimpy``: dkimpy 1.x signing the same message (pure-Python RSA), for comparison;
- ``verify``: ``verify_dkim`` of the signed message with the key served from memory.

    python -m bench.dkim_sign               # 2 KB, rsa and ed25519 and both
    python -m bench.dkim_sign --size 50000 --count 2000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable

from hayate.auth.dkim_keys import DkimKey, DkimKeyStore, dns_record
from hayate.auth.dkim_sign import DkimSigner, _sign_digest
from hayate.auth.dkim_verify import verify_dkim
from hayate.auth.signing import DkimSigningFilter
from hayate.config import DkimConfig
from hayate.core.envelope import Envelope, Listener, SessionInfo
from hayate.core.seams import MxAnswer


def make_message(size: int) -> bytes:
    head = (
        b"Received: from client.example.com (client.example.com [192.0.2.7])\r\n"
        b"\tby mx.example.com (Hayate) with ESMTPSA id 18A2F3C4D5E6\r\n"
        b"\tfor <bob@example.net>; Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        b"From: Alice Example <alice@example.com>\r\n"
        b"To: Bob <bob@example.net>\r\n"
        b"Subject: Your order 12345 has shipped\r\n"
        b"Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <20261103100000.12345@example.com>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"List-Unsubscribe: <mailto:unsub@example.com?subject=12345>\r\n"
        b"\r\n"
    )
    line = b"The quick brown fox jumps over the lazy dog;  again\tand again. \r\n"
    body = (line * (max(size - len(head), 0) // len(line) + 1))[: max(size - len(head), 2)]
    return head + body.rstrip(b"\r\n") + b"\r\n"


def timeit(fn: Callable[[], object], count: int, rounds: int = 5) -> float:
    """Best per-call time in microseconds over ``rounds`` runs of ``count`` calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(count):
            fn()
        best = min(best, (time.perf_counter() - start) / count * 1e6)
    return best


class MemoryResolver:
    def __init__(self, records: dict[str, str]) -> None:
        self.records = records

    async def resolve_txt(self, name: str) -> list[str]:
        return [self.records[name]]

    async def resolve_addresses(self, host: str) -> list[str]:
        return []

    async def resolve_mx(self, domain: str) -> MxAnswer:
        return MxAnswer(domain, ())

    async def resolve_ptr(self, ip: str) -> list[str]:
        return []


def bench_keys(keys: list[DkimKey], message: bytes, count: int) -> dict[str, float]:
    cfg = DkimConfig()
    signer = DkimSigner(cfg.headers, cfg.oversign)
    digest = hashlib.sha256(message[:600]).digest()
    now = time.time()
    out = {
        "raw": sum(timeit(lambda k=k: _sign_digest(k, digest), count) for k in keys),  # type: ignore[misc]
        "hayate": timeit(lambda: signer.sign(message, keys, now), count),
    }
    out["overhead"] = out["hayate"] - out["raw"]
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dkim_sign", description=__doc__)
    p.add_argument("--size", type=int, default=2048, help="message size in bytes")
    p.add_argument("--count", type=int, default=1000, help="calls per round")
    p.add_argument("--dkimpy", type=int, default=20, help="dkimpy signatures to time (0: skip)")
    args = p.parse_args(argv)

    message = make_message(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        store = DkimKeyStore(tmp)
        rsa_key = store.generate("example.com", "rsa", "r1")
        ed_key = store.generate("example.com", "ed25519", "e1")
        print(f"message: {len(message)} bytes; {args.count} calls per round, best of 5 rounds")
        print(f"{'keys':<14}{'raw µs':>10}{'hayate µs':>12}{'overhead µs':>14}")
        for label, keys in (("rsa-2048", [rsa_key]), ("ed25519", [ed_key]),
                            ("rsa+ed25519", [rsa_key, ed_key])):
            r = bench_keys(keys, message, args.count)
            print(f"{label:<14}{r['raw']:>10.1f}{r['hayate']:>12.1f}{r['overhead']:>14.1f}")

        filt = DkimSigningFilter(DkimConfig(), store)
        session = SessionInfo(Listener.SUBMISSION, "192.0.2.7", auth_user="alice@example.com")
        env = Envelope("alice@example.com", ("bob@example.net",))

        async def run_filter() -> float:
            start = time.perf_counter()
            for _ in range(args.count):
                await filt(session, env, message)
            return (time.perf_counter() - start) / args.count * 1e6

        print(f"ingest filter, rsa+ed25519: {asyncio.run(run_filter()):.1f} µs per message")

        resolver = MemoryResolver(dict(dns_record(k) for k in (rsa_key, ed_key)))
        signed = DkimSigner(DkimConfig().headers).sign(message, [rsa_key], time.time()) + message

        async def run_verify() -> float:
            n = max(args.count // 5, 20)
            start = time.perf_counter()
            for _ in range(n):
                verdicts = await verify_dkim(signed, resolver)
                assert verdicts[0].result == "pass", verdicts
            return (time.perf_counter() - start) / n * 1e6

        print(f"verify_dkim, rsa-2048: {asyncio.run(run_verify()):.1f} µs per message")

        if args.dkimpy:
            import dkim
            from cryptography.hazmat.primitives import serialization

            pem = rsa_key.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            times = []
            for _ in range(args.dkimpy):
                start = time.perf_counter()
                dkim.sign(message, b"r1", b"example.com", pem,
                          canonicalize=(b"relaxed", b"relaxed"))
                times.append((time.perf_counter() - start) * 1e6)
            print(f"dkimpy sign, rsa-2048 (pure Python): {statistics.median(times):.0f} µs")


if __name__ == "__main__":
    main()
