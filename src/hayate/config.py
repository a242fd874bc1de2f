"""The one settings model: a TOML file, validated, with every default written down here.

Relative paths in the file are taken relative to the directory that holds the file, so a
data folder can be moved together with its config. ``load_config`` turns every problem into
a :class:`ConfigError` whose message names the key and what is wrong with it.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(Exception):
    """A config file that cannot be used; the message is meant for the operator."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_hostport(value: str | None) -> str | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected 'host:port', got {value!r}")
    return value


def split_hostport(value: str, default_port: int = 25) -> tuple[str, int]:
    """'host:port' → (host, port); '[v6]:port' and a bare host are accepted too."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return value, default_port
    return host, int(port)


class ListenConfig(_Section):
    """Where each service listens ("host:port"); a missing key turns that service off."""

    smtp: str | None = None
    submission: str | None = None
    submissions: str | None = None
    http: str | None = None

    _hostports = field_validator("smtp", "submission", "submissions", "http")(_check_hostport)


class TlsConfig(_Section):
    cert: Path | None = None  # PEM certificate chain
    key: Path | None = None  # PEM private key


class DnsConfig(_Section):
    nameservers: list[str] = Field(default_factory=list)  # "ip" or "ip:port"; empty = system
    timeout: float = 5.0  # seconds for one lookup, all retries included
    cache_size: int = 10000  # answers kept in memory (respecting their TTL)


class TransportRule(_Section):
    """Like a Postfix transport map entry: mail for ``domain`` goes to ``nexthop``."""

    domain: str  # "example.net", or ".example.net" for its subdomains, or "*" for everything
    nexthop: str  # "host:port" (no MX lookup), or "host" for port 25

    @field_validator("domain")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class LimitsConfig(_Section):
    """Limits of the SMTP server; each has the reply a client sees when it hits it."""

    max_message_size: int = 36_700_160  # bytes (35 MiB); 552 5.3.4 above it
    max_recipients: int = 1000  # per message; 452 4.5.3 above it
    command_timeout: float = 300.0  # seconds waiting for a command; then 421 4.4.2
    data_timeout: float = 600.0  # seconds for the whole DATA phase
    max_connections: int = 2000  # at once, per worker process; 421 4.7.0 above it
    max_connections_per_ip: int = 50  # at once from one client address; 421 4.7.0
    max_bad_commands: int = 20  # errors in one session before 421 4.7.0 and close
    max_line_length: int = 4096  # bytes of one command line; 500 5.5.2 above it


class PolicyConfig(_Section):
    # What envelope sender an authenticated user may use:
    #   "own_address": only its own address; "own_domain": any address in its domain;
    #   "any": anything (trusted applications).
    authenticated_senders: Literal["own_address", "own_domain", "any"] = "own_domain"
    extra_sender_domains: list[str] = Field(default_factory=list)  # also allowed for all users
    require_tls_for_auth: bool = True  # AUTH only after STARTTLS (always on port 465)


class QueueConfig(_Section):
    """Retry schedule and lifetime, like Postfix's minimal/maximal_backoff_time."""

    min_backoff: float = 300.0  # first retry after this many seconds
    max_backoff: float = 4000.0  # the interval doubles up to this
    lifetime: float = 5 * 86400.0  # then the message bounces (maximal_queue_lifetime)
    active_window: int = 10000  # recipients held in memory at once per worker
    scan_interval: float = 1.0  # seconds between looks at the spool for due mail


class DeliveryConfig(_Section):
    connections_per_destination: int = 20  # like default_destination_concurrency_limit
    messages_per_connection: int = 1000  # then the connection is closed and a new one opened
    recipients_per_transaction: int = 100  # split larger groups into several transactions
    connect_timeout: float = 30.0
    command_timeout: float = 300.0  # per SMTP command of the client
    idle_timeout: float = 5.0  # an idle cached connection is closed after this
    tls: Literal["none", "may", "encrypt"] = "may"  # opportunistic STARTTLS by default
    port: int = 25  # port of MX hosts (tests point it elsewhere)


class StoreConfig(_Section):
    # "sqlite" keeps accounts and mailboxes in data_dir/hayate.db; a "postgresql://..." URL
    # puts them in PostgreSQL (the spool always stays on local disk).
    url: str = "sqlite"


# --- deliverability (issue 3) -----------------------------------------------------------
# Each section below belongs to one module; the module docstring named in the comment says
# how the keys are used.


DEFAULT_SIGNED_HEADERS = [
    "from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to",
    "references", "mime-version", "content-type", "content-transfer-encoding",
    "list-unsubscribe", "list-unsubscribe-post", "list-id", "feedback-id",
]
DEFAULT_OVERSIGNED_HEADERS = ["from", "subject", "to", "date", "list-unsubscribe"]


class DkimConfig(_Section):
    """Outbound DKIM signing (hayate.auth.signing). Keys live in data_dir/dkim/<domain>/."""

    sign: bool = True  # sign mail from submission, local and relay clients whose From has a key
    headers: list[str] = Field(default_factory=lambda: list(DEFAULT_SIGNED_HEADERS))
    oversign: list[str] = Field(default_factory=lambda: list(DEFAULT_OVERSIGNED_HEADERS))
    expire_after: float | None = None  # seconds; sets x= in the signature when given


class InboundAuthConfig(_Section):
    """SPF, DKIM, DMARC and ARC checks on the MX port (hayate.auth.inbound)."""

    enabled: bool = True
    authserv_id: str | None = None  # the id in Authentication-Results; default: hostname
    dmarc_reject: bool = True  # a DMARC failure under p=reject is refused with 550 5.7.1
    dmarc_quarantine: bool = True  # under p=quarantine: accepted with "X-Hayate-Quarantine: yes"
    trusted_arc_sealers: list[str] = Field(default_factory=list)  # their ARC pass overrides DMARC


class BouncesConfig(_Section):
    """VERP return paths and inbound bounce processing (hayate.bounces)."""

    # Envelope senders of outbound mail become "b-<token>@<domain>" so that a bounce names
    # its message and recipient; every address in this domain goes to the bounce processor
    # (publish an MX for it pointing here). None: no VERP, no bounce domain.
    domain: str | None = None
    verp: bool = True
    secret_file: Path | None = None  # HMAC key; default data_dir/verp.key (made on first use)


class SuppressionConfig(_Section):
    """When a recipient goes on a sending domain's suppression list (hayate.bounces)."""

    soft_bounce_limit: int = 3  # this many soft bounces ...
    soft_bounce_window: float = 7 * 86400.0  # ... within this many seconds suppress it
    notify_sender: bool = True  # a DSN tells the sender that a recipient was suppressed


class EventsConfig(_Section):
    """Per-recipient delivery events (hayate.events)."""

    enabled: bool = True
    flush_interval: float = 0.5  # seconds between batched writes
    batch_size: int = 1000  # a write happens at once when this many are waiting
    retention_days: int = 30  # older events are deleted


class EgressSource(_Section):
    """One local address outbound connections can leave from."""

    name: str
    address: str | None = None  # None: the system's choice
    helo: str | None = None  # EHLO name for this source; default: hostname
    warmup: str | None = None  # name of a [warmup.schedules] curve while this IP is new
    warmup_start: str | None = None  # "YYYY-MM-DD": day 1 of the warm-up


class PoolMember(_Section):
    source: str
    weight: int = 1


class EgressPool(_Section):
    name: str
    sources: list[PoolMember]


class EgressConfig(_Section):
    """Source addresses and pools (hayate.delivery.egress); no sources: the system's choice."""

    sources: list[EgressSource] = Field(default_factory=list)
    pools: list[EgressPool] = Field(default_factory=list)
    default_pool: str | None = None
    domain_pools: dict[str, str] = Field(default_factory=dict)  # sending domain → pool
    stream_pools: dict[str, str] = Field(default_factory=dict)  # stream → pool


class WarmupSchedule(_Section):
    # Messages per day per provider on day 1, 2, ... of the warm-up; after the last day
    # there is no cap.
    daily: list[int]


class WarmupConfig(_Section):
    """IP warm-up (hayate.queue.warmup)."""

    schedules: dict[str, WarmupSchedule] = Field(default_factory=dict)
    timezone: str = "UTC"  # the day boundary of the daily caps


class StreamsConfig(_Section):
    """Message streams: transactional mail is never queued behind bulk mail."""

    default: str = "transactional"
    header: str = "X-Hayate-Stream"  # a client may choose the stream; removed at ingest
    domains: dict[str, str] = Field(default_factory=dict)  # sending domain → its stream


class ShapingConfig(_Section):
    """Traffic shaping per site and provider (hayate.queue.shaping)."""

    presets: bool = True  # use the provider presets shipped with Hayate
    file: Path | None = None  # an operator's shaping TOML, layered over the presets


class Config(_Section):
    hostname: str = "localhost"
    data_dir: Path = Path("var")
    local_domains: list[str] = Field(default_factory=list)
    relay_networks: list[str] = Field(default_factory=list)
    workers: int = 0  # processes sharing the ports; 0 = one per CPU core
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    listen: ListenConfig = ListenConfig()
    tls: TlsConfig = TlsConfig()
    dns: DnsConfig = DnsConfig()
    transport: list[TransportRule] = Field(default_factory=list)
    limits: LimitsConfig = LimitsConfig()
    policy: PolicyConfig = PolicyConfig()
    queue: QueueConfig = QueueConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    store: StoreConfig = StoreConfig()
    dkim: DkimConfig = DkimConfig()
    auth: InboundAuthConfig = InboundAuthConfig()
    bounces: BouncesConfig = BouncesConfig()
    suppression: SuppressionConfig = SuppressionConfig()
    events: EventsConfig = EventsConfig()
    egress: EgressConfig = EgressConfig()
    warmup: WarmupConfig = WarmupConfig()
    streams: StreamsConfig = StreamsConfig()
    shaping: ShapingConfig = ShapingConfig()

    @field_validator("local_domains")
    @classmethod
    def _lower_domains(cls, value: list[str]) -> list[str]:
        return [d.lower().rstrip(".") for d in value]

    @field_validator("relay_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an IP network: {net!r}") from exc
        return value

    # Derived locations inside data_dir.
    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "hayate.db"

    @property
    def dkim_dir(self) -> Path:
        return self.data_dir / "dkim"

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)

    def relay_nets(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self.relay_networks]


def _resolve_paths(raw: dict[str, object], base: Path) -> None:
    def fix(section: dict[str, object], key: str) -> None:
        value = section.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            section[key] = str(base / value)

    fix(raw, "data_dir")
    tls = raw.get("tls")
    if isinstance(tls, dict):
        fix(tls, "cert")
        fix(tls, "key")
    for name, key in (("bounces", "secret_file"), ("shaping", "file")):
        section = raw.get(name)
        if isinstance(section, dict):
            fix(section, key)


def parse_config(text: str, base: Path, source: str = "<config>") -> Config:
    """Parse TOML text; relative paths are made absolute against ``base``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    _resolve_paths(raw, base)
    raw.setdefault("data_dir", str(base / "var"))
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            problems.append(f"  {where}: {msg}")
        raise ConfigError(f"{source}: invalid configuration:\n" + "\n".join(problems)) from exc


def load_config(path: str | os.PathLike[str]) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{p}: config file not found (create one with 'hayate init')") from exc
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: config file is not UTF-8 text") from exc
    return parse_config(text, p.resolve().parent, str(p))
