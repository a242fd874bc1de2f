"""TLS helpers: a self-signed certificate for first start and tests, and the SSL contexts.

``generate_self_signed``  EC P-256 key + X.509 certificate with DNS and IP subjectAltNames;
                          the key file is written with mode 0600.
``server_context``        what the SMTP listeners use (TLS 1.2 or newer).
``check_server_tls``      the ``[tls]`` certificate every TLS listener needs, checked by the
                          master before it forks: one readable line instead of workers that
                          crash and restart.
``client_context_no_verify``  opportunistic outbound TLS: encrypt, do not authenticate (like
                          Postfix's smtp_tls_security_level = may).
"""

from __future__ import annotations

import datetime
import errno
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _san_entries(names: list[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def generate_self_signed(
    cert_path: Path, key_path: Path, names: list[str], days: int = 825
) -> None:
    """Write a PEM certificate and its PEM (PKCS#8, unencrypted, 0600) key.

    ``names[0]`` becomes the subject CN; every name goes into subjectAltName (as an IP address
    when it parses as one, otherwise as a DNS name).
    """
    if not names:
        raise ValueError("at least one name is needed")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(key_pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for STARTTLS and implicit TLS: TLS 1.2+, no compression."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


IMPLICIT_TLS_LISTENERS = ("submissions", "imaps", "pop3s", "https")


def _unreadable(setting: str, path: Path) -> OSError | None:
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        return OSError(exc.errno, f"cannot read [tls] {setting} {path}: {exc.strerror or exc}")
    return None


def check_server_tls(
    cert: Path | None, key: Path | None, listeners: list[str]
) -> ssl.SSLContext | None:
    """The server context of ``[tls]`` cert and key, checked; None when neither is set and no
    listener in ``listeners`` needs one (the implicit-TLS ones do; STARTTLS listeners go
    without). Raises ``OSError`` whose text is one line naming the setting and the problem."""
    needing = [name for name in listeners if name in IMPLICIT_TLS_LISTENERS]
    if cert is None or key is None:
        if needing:
            raise OSError(errno.EINVAL,
                          f"[listen] {needing[0]} needs a certificate: set [tls] cert and key")
        if cert is None and key is None:
            return None  # STARTTLS is simply not offered
        raise OSError(errno.EINVAL, "[tls] needs both cert and key, or neither")
    for setting, path in (("cert", cert), ("key", key)):
        problem = _unreadable(setting, path)
        if problem is not None:
            raise problem
    try:
        return server_context(cert, key)
    except ssl.SSLError as exc:
        reason = exc.reason or "not PEM, or not what it should be"
        raise OSError(errno.EINVAL, f"[tls] cert {cert} and key {key} do not load as a PEM "
                                    f"certificate chain and its key ({reason})") from exc


def client_context_no_verify() -> ssl.SSLContext:
    """Opportunistic outbound TLS: TLS 1.2+, any certificate, no host name check."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
