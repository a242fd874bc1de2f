"""A complete test world for ``hayate dns check``: zones, DKIM keys and an HTTPS policy host.

:func:`records_for` gives the records a domain needs to pass every check (keyed by kind, so
a test drops or replaces one); :class:`PolicyServer` serves MTA-STS policies over real HTTPS
on 127.0.0.1 with a self-signed certificate (its PEM is the CA file the client trusts).
Shared by the unit tests (checks in-process) and the integration tests (the CLI).
"""

from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path
from types import TracebackType

from hayate.auth.dkim_keys import DkimKeyStore, dns_record
from hayate.dnscheck.results import Record
from hayate.tls import generate_self_signed

HOST = "mx.hayate.test"  # this server's hostname in every test config
HOST_IP = "192.0.2.10"
HOST_ZONE = "mx A 192.0.2.10\nother A 192.0.2.77\n"  # zone "hayate.test"
REVERSE_ZONE = "10 PTR mx.hayate.test.\n"  # zone "2.0.192.in-addr.arpa"


def good_policy(mx: str = HOST, mode: str = "enforce", max_age: int = 604800) -> bytes:
    return f"version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: {max_age}\r\n".encode()


def dkim_lines(store: DkimKeyStore, domain: str) -> str:
    """Zone lines for every key of ``domain`` that is not retired (as ``dns check`` prints)."""
    lines = []
    for key in store.keys(domain):
        if key.state != "retired":
            name, value = dns_record(key)
            lines.append(Record(name, "TXT", value).zone_line())
    return "\n".join(lines)


def records_for(domain: str, store: DkimKeyStore) -> dict[str, str]:
    """Everything ``domain`` needs, by kind: mx spf dkim dmarc sts sts_host tlsrpt."""
    if not store.keys(domain):
        store.generate(domain, "ed25519", "s1")
    return {
        "mx": f"@ MX 10 {HOST}.",
        "spf": f'@ TXT "v=spf1 ip4:{HOST_IP} -all"',
        "dkim": dkim_lines(store, domain),
        "dmarc": f'_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"',
        "sts": '_mta-sts TXT "v=STSv1; id=20260101"',
        "sts_host": "mta-sts A 127.0.0.1",
        "tlsrpt": f'_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{domain}"',
    }


def zone_body(records: dict[str, str]) -> str:
    return "\n".join(v for v in records.values() if v)


class PolicyServer:
    """HTTPS on 127.0.0.1 (OS-chosen port); ``policies[host] = (status, content_type, body)``."""

    def __init__(self, directory: Path, hosts: list[str]) -> None:
        self.cafile = directory / "policy-cert.pem"
        key = directory / "policy-key.pem"
        generate_self_signed(self.cafile, key, hosts)
        self.policies: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []  # (host, path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cafile, key)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = self.headers.get("Host", "").split(":")[0].lower()
                owner.requests.append((host, self.path))
                status, ctype, body = owner.policies.get(host, (404, "text/plain", b"none\n"))
                if self.path != "/.well-known/mta-sts.txt":
                    status, ctype, body = 404, "text/plain", b"no such file\n"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> PolicyServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
