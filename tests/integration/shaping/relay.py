"""A TCP relay in front of a real receiver that counts what the receiver is offered.

:class:`CountingRelay` listens on 127.0.0.1 (port 0) and relays every connection to
``upstream`` (smtp-sink), counting connections open at once (at the TCP level, and not
counting those past QUIT) and MAIL commands per connection. ``reply_delay`` slows the
receiver's answers, so that deliveries overlap. :class:`RelayThread` runs one on its own
event loop in a thread, for tests whose body blocks (a ``hayate serve`` subprocess and
smtplib).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field


@dataclass
class CountingRelay:
    """127.0.0.1:<port> → upstream, counting connections and MAIL commands per connection."""

    upstream: tuple[str, int]
    reply_delay: float = 0.0  # seconds each chunk from the receiver is held (a slow receiver)
    active: int = 0
    peak: int = 0  # TCP connections open at once
    sessions: int = 0
    peak_sessions: int = 0  # connections open at once, not counting those past QUIT
    mails: list[int] = field(default_factory=list)  # per connection, in order of opening
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> CountingRelay:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        number = len(self.mails)
        self.mails.append(0)
        self.active += 1
        self.peak = max(self.peak, self.active)
        self.sessions += 1
        self.peak_sessions = max(self.peak_sessions, self.sessions)
        in_session = True
        s_writer: asyncio.StreamWriter | None = None
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.upstream)

            async def up() -> None:
                nonlocal in_session
                tail = b""
                while data := await c_reader.read(65536):
                    seen = (tail + data).upper()
                    self.mails[number] += seen.count(b"\nMAIL FROM:") + seen.startswith(
                        b"MAIL FROM:")
                    if in_session and (b"\nQUIT" in seen or seen.startswith(b"QUIT")):
                        in_session = False
                        self.sessions -= 1
                    tail = data[-1:]  # a command starts after "\n": keep the last byte
                    assert s_writer is not None
                    s_writer.write(data)
                    await s_writer.drain()

            async def down() -> None:
                while data := await s_reader.read(65536):
                    if self.reply_delay:
                        await asyncio.sleep(self.reply_delay)
                    c_writer.write(data)
                    await c_writer.drain()

            pumps = [asyncio.create_task(up()), asyncio.create_task(down())]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for p in pumps:
                p.cancel()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self.active -= 1
            if in_session:
                self.sessions -= 1
            c_writer.close()
            if s_writer is not None:
                s_writer.close()
            self._tasks.discard(task)


class RelayThread:
    """``with RelayThread(upstream) as relay:`` a :class:`CountingRelay` served by a thread."""

    def __init__(self, upstream: tuple[str, int], reply_delay: float = 0.0) -> None:
        self.relay = CountingRelay(upstream, reply_delay)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> CountingRelay:
        self._thread.start()
        started: Future[CountingRelay] = asyncio.run_coroutine_threadsafe(
            self.relay.__aenter__(), self._loop)
        return started.result(10)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.relay.__aexit__(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
