"""Accept means durable: ``kill -9`` in the middle of a load loses nothing that got a 250.

Several clients send numbered messages as fast as they can; the whole process group of
``hayate serve`` (master and workers) is killed with SIGKILL while they do. After a restart
on the same data folder, every message that was acknowledged must reach the sink. Messages
delivered twice (sent just before the crash, their completion not yet recorded) are counted
and reported, not hidden.
"""

from __future__ import annotations

import re
import smtplib
import threading
import time
from collections import Counter
from pathlib import Path

from tests.support.hayate_server import HayateServer
from tests.support.sink import smtp_sink

SENDERS = 4
LOAD_SECONDS = 1.5
SUBJECT = re.compile(rb"Subject: crash-(\d+)-(\d+)")


def load(port: int, thread: int, acked: list[str], stop: threading.Event) -> None:
    n = 0
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            while not stop.is_set() and n < 100_000:
                n += 1
                key = f"{thread}-{n}"
                body = f"From: a@hayate.test\r\nSubject: crash-{key}\r\n\r\nmessage {key}\r\n"
                client.sendmail("a@hayate.test", ["x@example.net"], body.encode())
                acked.append(key)  # sendmail returned: the server said 250
    except (OSError, smtplib.SMTPException):
        return  # the server died under us: what was acknowledged so far counts


def test_kill9_during_load_loses_no_acknowledged_message(tmp_path: Path) -> None:
    with smtp_sink(dump=True) as sink:
        server = HayateServer(
            tmp_path, relay_networks=("127.0.0.0/8",), workers=2,
            transport=[{"domain": "*", "nexthop": sink.address}],
        )
        server.start()
        try:
            acked: list[str] = []
            stop = threading.Event()
            threads = [
                threading.Thread(target=load, args=(server.ports["smtp"], i, acked, stop))
                for i in range(SENDERS)
            ]
            for t in threads:
                t.start()
            time.sleep(LOAD_SECONDS)
            server.kill9()  # master and workers at once, mid-transaction
            stop.set()
            for t in threads:
                t.join(10)
            assert len(acked) > 50, "the load loop did not get going"
            server.start()  # same data folder: the spool is recovered
            deadline = time.monotonic() + 60
            delivered: Counter[str] = Counter()
            while time.monotonic() < deadline:
                delivered = Counter()
                for m in sink.messages():
                    found = SUBJECT.search(m.content)
                    if found:
                        delivered[f"{found.group(1).decode()}-{found.group(2).decode()}"] += 1
                if set(acked) <= set(delivered):
                    break
                time.sleep(0.2)
            missing = set(acked) - set(delivered)
            duplicates = sum(c - 1 for c in delivered.values() if c > 1)
            print(f"\ncrash test: {len(acked)} acknowledged, {len(delivered)} distinct delivered,"
                  f" {duplicates} duplicate deliveries, {len(missing)} lost")
            assert not missing, f"acknowledged but never delivered: {sorted(missing)[:10]}"
        finally:
            server.stop()
