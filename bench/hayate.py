"""Hayate as the relay under test: ``hayate serve -c FILE`` in its own session.

Everything that depends on how Hayate is configured and started lives in
:func:`write_config` and :func:`serve_command`; adjust those two when the CLI or the
settings change. The data folder lives under the same temporary base as Postfix's queue,
so both relays fsync to the same disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.procs import ServerProcess, free_port, wait_banner


def hayate_executable() -> Path:
    """The ``hayate`` script next to the running interpreter (the project's virtualenv)."""
    beside = Path(sys.executable).parent / "hayate"
    if beside.exists():
        return beside
    found = shutil.which("hayate")
    return Path(found) if found else beside


def serve_command(config: Path) -> list[str]:
    return [str(hayate_executable()), "serve", "-c", str(config)]


def write_config(directory: Path, *, smtp_port: int, nexthop: str) -> Path:
    """Write the benchmark's Hayate config into ``directory``; returns its path.

    A relay for 127.0.0.0/8 that sends everything to ``nexthop`` ("host:port") without an MX
    lookup and without STARTTLS (Postfix gets ``smtp_tls_security_level = none`` too).
    """
    path = directory / "hayate.toml"
    path.write_text(
        f'hostname = "bench.hayate.test"\n'
        f'data_dir = "{directory / "var"}"\n'
        f'local_domains = ["hayate.test"]\n'
        f'relay_networks = ["127.0.0.0/8"]\n'
        f'log_level = "warning"\n'
        f"\n"
        f"[listen]\n"
        f'smtp = "127.0.0.1:{smtp_port}"\n'
        f"\n"
        f"[delivery]\n"
        f'tls = "none"\n'
        f"\n"
        f"[[transport]]\n"
        f'domain = "*"\n'
        f'nexthop = "{nexthop}"\n',
        encoding="utf-8",
    )
    return path


def missing_hayate() -> str | None:
    exe = hayate_executable()
    if not exe.exists():
        return f"{exe} not found (run 'make' to install the package into .venv)"
    return None


class HayateRelay(ServerProcess):
    """A running ``hayate serve`` relaying to 127.0.0.1:``nexthop_port``."""

    name = "Hayate"

    def __init__(
        self,
        nexthop_port: int,
        base: Path | None = None,
        start_timeout: float = 30.0,
        root: Path | None = None,
        dkim: tuple[str, str] | None = None,
    ) -> None:
        """Start in a new temporary folder under ``base``, or in ``root`` (then reusing its
        spool, and leaving the folder in place on close). ``dkim`` = (domain, algorithm):
        make a signing key for that domain first, so relayed mail from it is signed."""
        self.port = free_port()
        self.keep_root = root is not None
        self.root = (
            root if root is not None else Path(tempfile.mkdtemp(prefix="hayate-bench-", dir=base))
        )
        self.log_path = self.root / "hayate.log"
        self.config = write_config(
            self.root, smtp_port=self.port, nexthop=f"127.0.0.1:{nexthop_port}"
        )
        self.proc = None
        try:
            if dkim is not None:
                domain, algo = dkim
                subprocess.run(
                    [str(hayate_executable()), "dkim", "keygen", domain, "--algo", algo,
                     "-c", str(self.config)],
                    check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )
            with self.log_path.open("ab") as log:  # the child keeps its own descriptor
                self.proc = subprocess.Popen(
                    serve_command(self.config),
                    cwd=self.root,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            problem = wait_banner(self.port, start_timeout, self.proc)
            if problem:
                raise RuntimeError(f"hayate serve: {problem}; log: {self.log_tail()}")
        except BaseException:
            self.close()
            raise

    @property
    def sid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def alive(self) -> str | None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            return f"hayate serve exited ({code}): {self.log_tail()}"
        return None

    def leftover(self) -> str | None:
        return None  # no queue listing command yet
