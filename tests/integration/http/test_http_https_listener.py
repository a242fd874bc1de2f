"""``[listen] https``: a real ``hayate serve`` answers the HTTP app over TLS with its ``[tls]``
certificate (curl and Python's http.client, both verifying it), takes a password change there
without ``plaintext_auth``, survives plain HTTP on that port, leaves the ``http`` listener as it
was, and refuses to start with a missing or broken certificate in one readable line."""

from __future__ import annotations

import http.client
import imaplib
import json
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from tests.integration.http.conftest import CurlResult, curl, over_https, wait_until_healthy
from tests.support.hayate_server import HayateServer

ALICE = "alice@hayate.test"


def https_get(port: int, path: str, cert: Path) -> tuple[int, bytes, str]:
    """GET with http.client over TLS, certificate and host name verified; (status, body,
    TLS version)."""
    context = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        assert conn.sock is not None
        version = conn.sock.version()
        return response.status, body, str(version)
    finally:
        conn.close()


def curl_https(port: int, path: str, cert: Path, *args: str, folder: Path) -> CurlResult:
    *options, url = over_https(port, path, cert)
    return curl(url, *options, *args, folder=folder)


def change_password(port: int, cert: Path, folder: Path, current: str, new: str,
                    ) -> tuple[int, dict[str, str]]:
    got = curl_https(port, "/account/password", cert, "-u", f"{ALICE}:{current}",
                     "--data-urlencode", f"new_password={new}", folder=folder)
    return got.status, json.loads(got.body)


def imap_login(port: int, cert: Path, password: str) -> bool:
    context = ssl.create_default_context(cafile=str(cert))
    with imaplib.IMAP4_SSL("localhost", port, ssl_context=context, timeout=10) as imap:
        try:
            imap.login(ALICE, password)
        except imaplib.IMAP4.error:
            return False
        return True


def test_health_and_password_change_over_https(tmp_path: Path) -> None:
    with HayateServer(tmp_path, listeners=("https", "imaps"), tls=True) as server:
        cert = server.dir / "cert.pem"
        port = server.ports["https"]
        server.cli("user", "add", ALICE, input=b"old-password\n")
        wait_until_healthy(port, tmp_path, https_cert=cert)

        status, body, version = https_get(port, "/health", cert)
        assert status == 200
        assert json.loads(body)["status"] == "ok"
        assert version in ("TLSv1.2", "TLSv1.3")

        # No plaintext_auth, no proxy: the TLS listener itself is what makes this allowed.
        status, answer = change_password(port, cert, tmp_path, "old-password", "over https")
        assert (status, answer) == (200, {"status": "password changed", "address": ALICE})
        assert imap_login(server.ports["imaps"], cert, "over https")
        assert not imap_login(server.ports["imaps"], cert, "old-password")

        # A client-supplied header does not make the TLS listener less (or more) secure.
        got = curl_https(port, "/account/password", cert, "-u", f"{ALICE}:over https",
                         "-H", "X-Forwarded-Proto: http", "--data-urlencode",
                         "new_password=again", folder=tmp_path)
        assert got.status == 200
        assert imap_login(server.ports["imaps"], cert, "again")
    assert "Traceback" not in server.log()


def test_plain_http_on_the_https_port_fails_and_both_listeners_keep_serving(
    tmp_path: Path,
) -> None:
    with HayateServer(tmp_path, listeners=("http", "https"), tls=True) as server:
        cert = server.dir / "cert.pem"
        plain, secure = server.ports["http"], server.ports["https"]
        server.cli("user", "add", ALICE, input=b"old-password\n")
        wait_until_healthy(secure, tmp_path, https_cert=cert)

        with pytest.raises(subprocess.CalledProcessError):  # curl: no HTTP answer at all
            curl(f"http://127.0.0.1:{secure}/health", folder=tmp_path, timeout=10)
        with socket.create_connection(("127.0.0.1", secure), timeout=10) as raw:
            raw.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            reply = b""
            for _ in range(16):  # bounded: until the server closes
                chunk = raw.recv(4096)
                if not chunk:
                    break
                reply += chunk
        assert not reply.startswith(b"HTTP/")

        status, _, _ = https_get(secure, "/health", cert)
        assert status == 200
        assert curl(f"http://127.0.0.1:{plain}/health", folder=tmp_path).status == 200

        # The plain listener keeps its rule: from loopback, a proxy that says "http" is refused.
        got = curl(f"http://127.0.0.1:{plain}/account/password", "-u",
                   f"{ALICE}:old-password", "-H", "X-Forwarded-Proto: http",
                   "--data-urlencode", "new_password=never", folder=tmp_path)
        assert got.status == 403
        status, answer = change_password(secure, cert, tmp_path, "old-password", "new one")
        assert status == 200, answer

        # Autoconfig: the same answer on both listeners.
        query = "/mail/config-v1.1.xml?emailaddress=" + ALICE
        over_plain = curl(f"http://127.0.0.1:{plain}{query}", folder=tmp_path)
        over_tls = curl_https(secure, query, cert, folder=tmp_path)
        assert over_plain.status == over_tls.status == 200
        assert over_plain.body == over_tls.body
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(("tls", "expected"), [
    (None, "[listen] https needs a certificate: set [tls] cert and key"),
    ({"cert": "missing.pem", "key": "key.pem"}, "cannot read [tls] cert "),
    ({"cert": "cert.pem"}, "[listen] https needs a certificate: set [tls] cert and key"),
    ({"cert": "garbage.pem", "key": "garbage.pem"}, "do not load as a PEM certificate chain"),
    ({"cert": "cert.pem", "key": "other-key.pem"}, "KEY_VALUES_MISMATCH"),
])
def test_a_missing_or_broken_certificate_stops_serve_readably(
    tmp_path: Path, tls: dict[str, str] | None, expected: str,
) -> None:
    from hayate.tls import generate_self_signed

    generate_self_signed(tmp_path / "cert.pem", tmp_path / "key.pem", ["localhost"])
    generate_self_signed(tmp_path / "other.pem", tmp_path / "other-key.pem", ["localhost"])
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    server = HayateServer(tmp_path, listeners=("http", "https"),
                          sections={"tls": tls} if tls else None)
    done = server.cli("serve", check=False)  # exits at once (or times out: a failure)
    error = done.stderr.decode()
    assert done.returncode == 1
    assert expected in error
    assert "Traceback" not in error
    assert len(error.strip().splitlines()) == 1


@pytest.mark.parametrize("listener", ["submissions", "imaps", "pop3s"])
def test_every_implicit_tls_listener_without_a_certificate_stops_serve_readably(
    tmp_path: Path, listener: str
) -> None:
    server = HayateServer(tmp_path, listeners=("smtp", listener))
    done = server.cli("serve", check=False)
    error = done.stderr.decode()
    assert done.returncode == 1
    assert f"[listen] {listener} needs a certificate: set [tls] cert and key" in error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1


def test_a_broken_certificate_stops_serve_even_for_starttls_only(tmp_path: Path) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    server = HayateServer(tmp_path, listeners=("smtp", "submission"),
                          sections={"tls": {"cert": "garbage.pem", "key": "garbage.pem"}})
    done = server.cli("serve", check=False)
    error = done.stderr.decode()
    assert done.returncode == 1 and "do not load as a PEM certificate chain" in error
    assert "Traceback" not in error
