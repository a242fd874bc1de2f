"""``hayate serve``: the master process, like Postfix's master(8).

It binds every listening socket once (so port 0 works and every worker shares the same
ports), prepares the store schema, then forks one worker per core. Each worker runs
:func:`hayate.runtime.run_worker` on its own event loop (uvloop when installed) and owns its
spool shard. The master restarts a worker that dies and, on SIGTERM/SIGINT, stops them all
(each finishes its in-flight deliveries within a grace period; queued mail stays on disk).

With more than one worker, the master also creates the node's shared limit table
(:class:`hayate.core.sharedtable.SharedTable`) before forking, so that shaping's limits and
``connections_per_destination`` hold for the node, not per worker. When a worker dies, the
master clears the worker's column of the table (the connections it held are gone with it);
the restarted worker clears it again before it starts delivering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hayate.config import Config, split_hostport
from hayate.core.sharedtable import SharedTable
from hayate.tls import check_server_tls

log = logging.getLogger("hayate.serve")

RESTART_DELAY = 1.0


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s hayate[%(process)d] %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )


def bind_listeners(cfg: Config) -> dict[str, socket.socket]:
    """Bind and listen on every configured address; raises OSError with the address, or with
    what is wrong with the ``[tls]`` certificate that the TLS listeners need."""
    names = ("smtp", "submission", "submissions", "http", "https", "imap", "imaps", "pop3",
             "pop3s")
    configured = [name for name in names if getattr(cfg.listen, name) is not None]
    # A missing or broken certificate: one readable line now, not workers crashing in a loop.
    check_server_tls(cfg.tls.cert, cfg.tls.key, configured)
    sockets: dict[str, socket.socket] = {}
    for name in configured:
        address = getattr(cfg.listen, name)
        host, port = split_hostport(address)
        try:
            sock = socket.create_server((host, port), backlog=1024, reuse_port=False)
        except OSError as exc:
            for s in sockets.values():
                s.close()
            why = f"cannot listen on {address} ({name}): {exc.strerror}"
            raise OSError(exc.errno, why) from exc
        sock.setblocking(False)
        sockets[name] = sock
    return sockets


def describe(sockets: dict[str, socket.socket]) -> dict[str, str]:
    out = {}
    for name, sock in sockets.items():
        host, port = sock.getsockname()[:2]
        out[name] = f"{host}:{port}"
    return out


def prepare_store(cfg: Config) -> None:
    from hayate.store import open_store

    async def migrate() -> None:
        store = open_store(cfg.store.url, cfg.sqlite_path)
        await store.create()
        try:
            await store.migrate()
        finally:
            await store.close()

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(migrate())


def _worker_main(cfg: Config, index: int, sockets: dict[str, socket.socket],
                 table: SharedTable | None) -> None:
    """Body of a forked worker; never returns."""
    code = 0
    try:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        if table is not None:
            table.reset_worker(index)  # nothing of a previous worker with this index is ours
        # Only worker 0 serves HTTP(S) (health, metrics): one answer, not one per worker.
        mine = {k: v for k, v in sockets.items() if k not in ("http", "https") or index == 0}
        for k, v in sockets.items():
            if k not in mine:
                v.close()
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        from hayate.runtime import run_worker

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await run_worker(cfg, index, mine, stop, table)

        asyncio.run(main())
    except BaseException:
        logging.getLogger("hayate.worker").exception("worker %d crashed", index)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


class Master:
    def __init__(self, cfg: Config, sockets: dict[str, socket.socket]) -> None:
        self.cfg = cfg
        self.sockets = sockets
        self.children: dict[int, int] = {}  # pid → worker index
        self.stopping = False
        # Created before any fork: every worker (and every restarted one) shares it.
        workers = cfg.worker_count
        self.table = SharedTable(workers) if workers > 1 else None

    def spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:
            _worker_main(self.cfg, index, self.sockets, self.table)
        self.children[pid] = index

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        def request_stop(signum: int, frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        for index in range(self.cfg.worker_count):
            self.spawn(index)
        if on_ready is not None:
            on_ready()
        while self.children:
            if self.stopping:
                return self.shutdown()
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.2)
                continue
            index = self.children.pop(pid)
            if self.stopping:
                continue
            log.error("worker %d (pid %d) exited with status %d; restarting", index, pid,
                      os.waitstatus_to_exitcode(status))
            if self.table is not None:
                freed = self.table.reset_worker(index)
                if freed:
                    log.info("freed %d connection slot(s) worker %d held", freed, index)
            time.sleep(RESTART_DELAY)
            self.spawn(index)
        return 0

    def shutdown(self, grace: float = 15.0) -> int:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
            else:
                self.children.pop(pid, None)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.info("stopped")
        return 0


def serve(cfg: Config, announce: Callable[[dict[str, str]], None]) -> int:
    setup_logging(cfg.log_level)
    prepare_store(cfg)
    cfg.spool_dir.mkdir(parents=True, exist_ok=True)
    sockets = bind_listeners(cfg)
    addresses = describe(sockets)
    pidfile = cfg.data_dir / "run" / "hayate.pid"
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{os.getpid()}\n")
    master = Master(cfg, sockets)
    try:
        return master.run(on_ready=lambda: announce(addresses))
    finally:
        with contextlib.suppress(OSError):
            Path(pidfile).unlink()
