"""Helpers for tests of the HTTP listener: curl as the client (over HTTPS: verifying the test
certificate for ``localhost``), free ports for listeners whose real port autoconfig must
announce."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from hayate.http.app import http_server


@dataclass(frozen=True)
class CurlResult:
    status: int
    content_type: str
    headers: str
    body: bytes


def curl(url: str, *args: str, body: bytes | None = None, folder: Path,
         timeout: float = 30.0) -> CurlResult:
    """One request with the real curl; ``args`` are extra curl options (-H, -u, -X ...);
    ``body`` is sent with --data-binary from a file."""
    out, head = folder / "curl-body", folder / "curl-headers"
    cmd = ["curl", "-sS", "--max-time", str(timeout), "-o", str(out), "-D", str(head),
           "-w", "%{http_code} %{content_type}", *args]
    if body is not None:
        data = folder / "curl-request"
        data.write_bytes(body)
        cmd += ["--data-binary", f"@{data}"]
    done = subprocess.run([*cmd, url], capture_output=True, timeout=timeout + 5, check=True)
    status, _, content_type = done.stdout.decode().partition(" ")
    return CurlResult(int(status), content_type, head.read_text(errors="replace"),
                      out.read_bytes())


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (for listeners whose number a test must know)."""
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    try:
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def over_https(port: int, path: str, cert: Path) -> tuple[str, ...]:
    """curl arguments then URL for ``path`` on an HTTPS listener of 127.0.0.1 whose
    certificate (``cert``, also the trust anchor) names ``localhost``."""
    return ("--cacert", str(cert), "--resolve", f"localhost:{port}:127.0.0.1",
            f"https://localhost:{port}{path}")


def wait_until_healthy(port: int, folder: Path, timeout: float = 15.0,
                       https_cert: Path | None = None) -> None:
    """Until /health answers 200 (the worker has published its first stats); over HTTPS when
    ``https_cert`` is given."""
    *args, url = (over_https(port, "/health", https_cert) if https_cert is not None
                  else (f"http://127.0.0.1:{port}/health",))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if curl(url, *args, folder=folder, timeout=2).status == 200:
                return
        except subprocess.CalledProcessError:
            pass  # no answer yet
        time.sleep(0.2)
    raise AssertionError("/health did not become 200")


def listen_on(names: Sequence[str], ports: Sequence[int]) -> dict[str, str]:
    return {name: f"127.0.0.1:{port}" for name, port in zip(names, ports, strict=True)}


async def acurl(url: str, *args: str, folder: Path, timeout: float = 30.0) -> CurlResult:
    """:func:`curl` for tests whose server runs on the test's own event loop."""
    out, head = folder / "acurl-body", folder / "acurl-headers"
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", str(timeout), "-o", str(out), "-D", str(head),
        "-w", "%{http_code} %{content_type}", *args, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout + 5)
    assert process.returncode == 0, stderr.decode()
    status, _, content_type = stdout.decode().partition(" ")
    return CurlResult(int(status), content_type, head.read_text(errors="replace"),
                      out.read_bytes())


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[int]:
    """Run the app with uvicorn as ``hayate serve`` does, on 127.0.0.1 (port chosen by the
    OS), on this loop."""
    sock = socket.create_server(("127.0.0.1", 0))
    server = http_server(app)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
