"""hayate.tls: the self-signed certificate and the contexts, checked with real handshakes."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hayate.tls import client_context_no_verify, generate_self_signed, server_context


@pytest.fixture
def cert_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    generate_self_signed(cert, key, ["localhost", "127.0.0.1", "mail.example.test"], days=30)
    return cert, key


def test_certificate_contents(cert_files: tuple[Path, Path]) -> None:
    cert_path, key_path = cert_files
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "mail.example.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=29) < lifetime <= datetime.timedelta(days=30)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_key_mode_fixed_when_overwriting(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("old")
    key.chmod(0o644)
    generate_self_signed(tmp_path / "cert.pem", key, ["localhost"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", [])


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext,
              server_hostname: str | None = None) -> str:
    """One TLS handshake over 127.0.0.1; returns the negotiated version."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello")
        except (OSError, ssl.SSLError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            assert tls.recv(5) == b"hello"
            version = tls.version()
            assert version is not None
            return version
    finally:
        thread.join(5)
        listener.close()


def test_handshake_with_opportunistic_client(cert_files: tuple[Path, Path]) -> None:
    assert handshake(server_context(*cert_files), client_context_no_verify()) in (
        "TLSv1.2", "TLSv1.3"
    )


def test_certificate_verifies_for_localhost(cert_files: tuple[Path, Path]) -> None:
    strict = ssl.create_default_context(cafile=str(cert_files[0]))
    assert handshake(server_context(*cert_files), strict, server_hostname="localhost")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_server_refuses_tls_1_1(cert_files: tuple[Path, Path]) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    try:
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(server_context(*cert_files), old)


def test_contexts_settings(cert_files: tuple[Path, Path]) -> None:
    server = server_context(*cert_files)
    assert server.minimum_version == ssl.TLSVersion.TLSv1_2
    client = client_context_no_verify()
    assert client.verify_mode == ssl.CERT_NONE and not client.check_hostname
