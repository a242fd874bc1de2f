"""Run a real ``hayate serve`` process for end-to-end tests.

The server is started as a subprocess (its own process group, so a test can ``kill -9`` the
master and its workers together), with a config written from keyword arguments; ports are
chosen by the OS (``127.0.0.1:0``) and read back from the lines ``hayate serve`` prints.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LISTEN_LINE = re.compile(
    r"^\s+(smtp|submission|submissions|https?|imap|imaps|pop3|pop3s)\s+(\S+):(\d+)\s*$"
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def render_config(top: dict[str, Any], sections: dict[str, dict[str, Any]],
                  transport: list[dict[str, str]]) -> str:
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, values in sections.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
    for rule in transport:
        lines.append("\n[[transport]]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in rule.items())
    return "\n".join(lines) + "\n"


class HayateServer:
    """``with HayateServer(tmp_path, ...) as h: h.ports["smtp"]``."""

    def __init__(
        self,
        directory: Path,
        *,
        local_domains: tuple[str, ...] = ("hayate.test",),
        relay_networks: tuple[str, ...] = (),
        transport: list[dict[str, str]] | None = None,
        listeners: tuple[str, ...] = ("smtp",),
        workers: int = 1,
        sections: dict[str, dict[str, Any]] | None = None,
        hostname: str = "mx.hayate.test",
        tls: bool = False,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "hayate.toml"
        secs: dict[str, dict[str, Any]] = {"listen": {n: "127.0.0.1:0" for n in listeners}}
        if tls:
            from hayate.tls import generate_self_signed

            generate_self_signed(self.dir / "cert.pem", self.dir / "key.pem", ["localhost"])
            secs["tls"] = {"cert": "cert.pem", "key": "key.pem"}
        for name, values in (sections or {}).items():
            secs.setdefault(name, {}).update(values)
        top = {
            "hostname": hostname,
            "data_dir": "data",
            "local_domains": list(local_domains),
            "relay_networks": list(relay_networks),
            "workers": workers,
            "log_level": "info",
        }
        self.config_path.write_text(render_config(top, secs, transport or []))
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        self.log_path = self.dir / "hayate.log"

    def cli(self, *args: str, input: bytes | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[bytes]:
        """Run ``hayate ARGS -c CONFIG``."""
        cmd = [sys.executable, "-m", "hayate.cli", *args, "-c", str(self.config_path)]
        result = subprocess.run(cmd, input=input, capture_output=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"{cmd} failed: {result.stderr.decode()}")
        return result

    def start(self, timeout: float = 20.0) -> HayateServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open while the server runs
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hayate.cli", "serve", "-c", str(self.config_path)],
            stdout=subprocess.PIPE, stderr=log, start_new_session=True, cwd=self.dir,
        )
        log.close()
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        buf = b""
        self.ports = {}
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
                for line in buf.decode(errors="replace").splitlines():
                    m = LISTEN_LINE.match(line)
                    if m:
                        self.ports[m.group(1)] = int(m.group(3))
                if b"send a test message" in buf or b"or: printf" in buf:
                    return self
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"hayate serve did not start: {self.log_path.read_text()[-3000:]}")

    def kill9(self) -> None:
        """SIGKILL the master and every worker at once (a crash)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> HayateServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
