"""Micro-benchmark of inbound DKIM verification: what one verified message costs.

For messages of 2 KB and 50 KB (headers like a real delivery, one signature made by Hayate's
signer, relaxed/relaxed) it times, per message and as the best of a few rounds:

- ``verify_dkim``: :func:`hayate.auth.dkim_verify.verify_dkim` end to end (find the
  signature, parse its tags, fetch the key through a resolver answering from memory, check
  the key record, canonicalize, hash, verify) — what the MX pays per signature;
- ``dkimpy``: dkimpy 1.x verifying the same signature against the same record in memory
  (``dkim.DKIM(...).verify`` with a ``dnsfunc``), i.e. the verification core the MX used
  before it had its own verifier (dkimpy's RSA is pure Python).

Every timed call is checked to pass, so a broken verifier cannot look fast.

    python -m bench.dkim_verify                     # 2 KB and 50 KB, rsa-2048 and ed25519
    python -m bench.dkim_verify --count 200 --sizes 2048
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import dkim  # type: ignore[import-untyped, unused-ignore]

from bench.dkim_sign import MemoryResolver, make_message, timeit
from hayate.auth.dkim_keys import DkimKey, DkimKeyStore, dns_record
from hayate.auth.dkim_sign import DkimSigner
from hayate.auth.dkim_verify import verify_dkim
from hayate.config import DkimConfig


def time_hayate(signed: bytes, resolver: MemoryResolver, count: int, rounds: int) -> float:
    async def run() -> float:
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(count):
                verdicts = await verify_dkim(signed, resolver)
                if verdicts[0].result != "pass":
                    raise SystemExit(f"verify_dkim did not pass: {verdicts}")
            best = min(best, (time.perf_counter() - start) / count * 1e6)
        return best

    return asyncio.run(run())


def time_dkimpy(signed: bytes, record: bytes, count: int, rounds: int) -> float:
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        return record

    def once() -> None:
        if not dkim.DKIM(signed, minkey=1024).verify(dnsfunc=dnsfunc):
            raise SystemExit("dkimpy did not pass")

    return timeit(once, count, rounds)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dkim_verify", description=__doc__)
    p.add_argument("--sizes", default="2048,51200", help="message sizes in bytes, comma-separated")
    p.add_argument("--count", type=int, default=300, help="verifications per round")
    p.add_argument("--rounds", type=int, default=5, help="rounds; the best one counts")
    p.add_argument("--dkimpy-count", type=int, default=60, help="dkimpy calls per round (0: skip)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        store = DkimKeyStore(tmp)
        keys: list[tuple[str, DkimKey]] = [
            ("rsa-2048", store.generate("example.com", "rsa", "r1")),
            ("ed25519", store.generate("example.com", "ed25519", "e1")),
        ]
        records = dict(dns_record(k) for _, k in keys)
        resolver = MemoryResolver(records)
        signer = DkimSigner(DkimConfig().headers, DkimConfig().oversign)
        print(f"best of {args.rounds} rounds; µs per verified message (one signature)")
        print(f"{'key':<10}{'size':>8}{'verify_dkim µs':>16}{'dkimpy µs':>12}")
        for size in (int(s) for s in args.sizes.split(",")):
            message = make_message(size)
            for label, key in keys:
                signed = signer.sign(message, [key], time.time()) + message
                ours = time_hayate(signed, resolver, args.count, args.rounds)
                theirs = float("nan")
                if args.dkimpy_count:
                    record = records[key.record_name].encode()
                    theirs = time_dkimpy(signed, record, args.dkimpy_count, args.rounds)
                print(f"{label:<10}{len(signed):>8}{ours:>16.1f}{theirs:>12.1f}")


if __name__ == "__main__":
    main()
