"""The DKIM key store: private keys per sending domain and selector, their state, DNS records.

Layout inside ``cfg.dkim_dir`` (``data_dir/dkim``)::

    <domain>/<selector>.pem    the private key, PKCS#8 PEM, mode 0600
    <domain>/<selector>.json   {"algorithm": "rsa"|"ed25519", "created": epoch, "state": ...}

States of a key:

- ``active``: signs outbound mail. Several may be active at once (dual signing with an
  rsa and an ed25519 key);
- ``published``: kept in DNS, no longer (or not yet) signing. A key rotated out stays
  published until every message it signed has been delivered and checked; a new key can
  be published first and activated once its record is visible in DNS;
- ``retired``: not used at all; its DNS record can be removed.

Rotation: generating a new active key demotes the active keys of the same algorithm to
``published``; ``hayate dkim retire`` later retires the old one.

The store reads every key once (on first use) and keeps them in memory; changes made
through the same object update the files and the cache together. A running server sees
keys made by another process after :meth:`DkimKeyStore.reload` (or a restart).
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

Algorithm = Literal["rsa", "ed25519"]
KeyState = Literal["active", "published", "retired"]
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

ALGORITHMS: tuple[str, ...] = ("rsa", "ed25519")
STATES: tuple[str, ...] = ("active", "published", "retired")
MIN_RSA_BITS = 1024  # RFC 8301: verifiers refuse smaller keys
MAX_RSA_BITS = 4096

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_SEL_LABEL = r"[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")
_SELECTOR = re.compile(rf"^{_SEL_LABEL}(\.{_SEL_LABEL})*$")


class DkimKeyError(Exception):
    """A key operation that cannot be done; the message is meant for the operator."""


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str  # d=, lower case
    selector: str  # s=
    algorithm: Algorithm
    created: float  # seconds since the epoch
    state: KeyState
    private_key: PrivateKey = field(repr=False, compare=False)

    @property
    def signature_algorithm(self) -> str:
        """The a= value of signatures made with this key."""
        return "rsa-sha256" if self.algorithm == "rsa" else "ed25519-sha256"

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def bits(self) -> int:
        key = self.private_key
        return key.key_size if isinstance(key, rsa.RSAPrivateKey) else 256


def normalize_domain(domain: str) -> str:
    """A sending domain as stored (lower case, no trailing dot, IDNA for non-ASCII);
    raises DkimKeyError for something that is not a domain name."""
    text = domain.strip().rstrip(".").lower()
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise DkimKeyError(f"not a domain name: {domain!r}") from exc
    if not _DOMAIN.match(text):
        raise DkimKeyError(f"not a domain name: {domain!r}")
    return text


def normalize_selector(selector: str) -> str:
    text = selector.strip().lower()
    if not _SELECTOR.match(text):
        raise DkimKeyError(
            f"not a valid selector: {selector!r} (letters, digits, '-', '_' and dots)"
        )
    return text


def public_key_b64(key: PrivateKey) -> str:
    """The p= value: the DER SubjectPublicKeyInfo for rsa, the raw 32 bytes for ed25519
    (RFC 8463 3)."""
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def dns_record(key: DkimKey) -> tuple[str, str]:
    """(name, TXT value) to publish, e.g. ("s1._domainkey.example.com", "v=DKIM1; k=rsa; p=...")."""
    return key.record_name, f"v=DKIM1; k={key.algorithm}; p={public_key_b64(key.private_key)}"


def txt_strings(value: str, size: int = 255) -> list[str]:
    """``value`` cut into strings of at most ``size`` bytes, as a zone file needs them."""
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class DkimKeyStore:
    """Keys in ``path/<domain>/<selector>.pem`` with their metadata; cached after one read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._keys: dict[str, dict[str, DkimKey]] | None = None
        self._signing: dict[str, tuple[DkimKey, ...]] = {}

    # -- reading -------------------------------------------------------------------------

    def reload(self) -> None:
        """Read every key again from disk (for a server after keys changed elsewhere)."""
        keys: dict[str, dict[str, DkimKey]] = {}
        if self.path.is_dir():
            for domain_dir in sorted(self.path.iterdir()):
                if not domain_dir.is_dir():
                    continue
                found = {}
                for meta in sorted(domain_dir.glob("*.json")):
                    key = self._read_key(domain_dir.name, meta)
                    found[key.selector] = key
                if found:
                    keys[domain_dir.name] = found
        self._keys = keys
        self._rebuild()

    def _read_key(self, domain: str, meta_path: Path) -> DkimKey:
        selector = meta_path.stem
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            pem = meta_path.with_suffix(".pem").read_bytes()
            private = serialization.load_pem_private_key(pem, password=None)
        except (OSError, ValueError, TypeError) as exc:
            where = meta_path.with_suffix(".pem")
            raise DkimKeyError(f"{where}: cannot read DKIM key: {exc}") from exc
        algorithm = meta.get("algorithm")
        state = meta.get("state")
        if algorithm not in ALGORITHMS or state not in STATES:
            raise DkimKeyError(f"{meta_path}: bad algorithm or state in key metadata")
        if not isinstance(private, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) or (
            isinstance(private, rsa.RSAPrivateKey) != (algorithm == "rsa")
        ):
            raise DkimKeyError(f"{meta_path.with_suffix('.pem')}: not a {algorithm} key")
        return DkimKey(domain, selector, algorithm, float(meta.get("created", 0)), state, private)

    def _loaded(self) -> dict[str, dict[str, DkimKey]]:
        if self._keys is None:
            self.reload()
        assert self._keys is not None
        return self._keys

    def _rebuild(self) -> None:
        self._signing = {
            domain: tuple(
                sorted(
                    (k for k in found.values() if k.state == "active"),
                    key=lambda k: (k.algorithm != "rsa", k.selector),
                )
            )
            for domain, found in self._loaded().items()
        }

    def domains(self) -> list[str]:
        return sorted(self._loaded())

    def keys(self, domain: str) -> list[DkimKey]:
        """Every key of ``domain`` (any state), oldest first."""
        found = self._loaded().get(normalize_domain(domain), {})
        return sorted(found.values(), key=lambda k: (k.created, k.selector))

    def get(self, domain: str, selector: str) -> DkimKey:
        dom = normalize_domain(domain)
        found = self._loaded().get(dom)
        if not found:
            raise DkimKeyError(f"no DKIM keys for domain {dom}")
        key = found.get(normalize_selector(selector))
        if key is None:
            raise DkimKeyError(f"no DKIM key with selector {selector!r} for {dom}")
        return key

    def signing_keys(self, domain: str) -> tuple[DkimKey, ...]:
        """The active keys of ``domain`` (rsa first); () when it has none. ``domain`` must be
        lower case already (this is the per-message path: no normalization)."""
        if self._keys is None:
            self.reload()
        return self._signing.get(domain, ())

    # -- changing ------------------------------------------------------------------------

    def default_selector(self, domain: str, algorithm: str, now: float | None = None) -> str:
        """A dated selector not used yet for ``domain``: "hy202611r" (rsa), "hy202611e"
        (ed25519), then "hy202611r2", ... on a clash."""
        stamp = time.strftime("%Y%m", time.gmtime(time.time() if now is None else now))
        base = f"hy{stamp}{'r' if algorithm == 'rsa' else 'e'}"
        taken = self._loaded().get(normalize_domain(domain), {})
        candidate, n = base, 1
        while candidate in taken or (self.path / domain / f"{candidate}.pem").exists():
            n += 1
            candidate = f"{base}{n}"
        return candidate

    def generate(
        self,
        domain: str,
        algo: str = "rsa",
        selector: str | None = None,
        bits: int = 2048,
        *,
        activate: bool = True,
        now: float | None = None,
    ) -> DkimKey:
        """Make and store a new key. With ``activate`` it signs from now on and the active
        keys of the same algorithm become "published"; without, it is only "published"
        (put it in DNS first, then :meth:`activate` it)."""
        dom = normalize_domain(domain)
        if algo not in ALGORITHMS:
            raise DkimKeyError(f"unknown algorithm {algo!r} (use rsa or ed25519)")
        if algo == "rsa" and not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise DkimKeyError(f"rsa key size must be {MIN_RSA_BITS}..{MAX_RSA_BITS} bits")
        created = time.time() if now is None else now
        if selector:
            sel = normalize_selector(selector)
        else:
            sel = self.default_selector(dom, algo, created)
        if sel in self._loaded().get(dom, {}) or (self.path / dom / f"{sel}.pem").exists():
            raise DkimKeyError(f"selector {sel!r} already exists for {dom}")
        private: PrivateKey
        if algo == "rsa":
            private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        else:
            private = ed25519.Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        folder = self.path / dom
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(folder / f"{sel}.pem", pem)
        algorithm: Algorithm = "rsa" if algo == "rsa" else "ed25519"
        key = DkimKey(dom, sel, algorithm, created, "published", private)
        self._save(key)
        if activate:
            key = self.activate(dom, sel)
        return key

    def activate(self, domain: str, selector: str) -> DkimKey:
        """Make a key sign; other active keys of the same algorithm become "published"."""
        key = self.get(domain, selector)
        for other in self.keys(key.domain):
            if (
                other.state == "active"
                and other.algorithm == key.algorithm
                and other.selector != key.selector
            ):
                self._save(replace(other, state="published"))
        return self._save(replace(key, state="active"))

    def set_state(self, domain: str, selector: str, state: str) -> DkimKey:
        if state not in STATES:
            raise DkimKeyError(f"unknown state {state!r} (active, published or retired)")
        if state == "active":
            return self.activate(domain, selector)
        key = self.get(domain, selector)
        return self._save(replace(key, state="published" if state == "published" else "retired"))

    def _save(self, key: DkimKey) -> DkimKey:
        meta = {"algorithm": key.algorithm, "created": key.created, "state": key.state}
        path = self.path / key.domain / f"{key.selector}.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(meta) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        self._loaded().setdefault(key.domain, {})[key.selector] = key
        self._rebuild()
        return key
