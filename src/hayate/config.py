"""The one settings model: a TOML file, validated, with every default written down here.

Relative paths in the file are taken relative to the directory that holds the file, so a
data folder can be moved together with its config. ``load_config`` turns every problem into
a :class:`ConfigError` whose message names the key and what is wrong with it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tomllib
import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


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


def _check_networks(value: list[str]) -> list[str]:
    for net in value:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise ValueError(f"not an IP network: {net!r}") from exc
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
    https: str | None = None  # the HTTP app over TLS with the [tls] certificate
    imap: str | None = None  # IMAP with STARTTLS (143)
    imaps: str | None = None  # IMAP over implicit TLS (993)
    pop3: str | None = None  # POP3 with STLS (110)
    pop3s: str | None = None  # POP3 over implicit TLS (995)

    _hostports = field_validator(
        "smtp", "submission", "submissions", "http", "https", "imap", "imaps", "pop3", "pop3s"
    )(_check_hostport)


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

    enabled: bool = True  # check mail from outside on the MX port, add Authentication-Results
    authserv_id: str | None = None  # the id in Authentication-Results; default: hostname
    dmarc_reject: bool = True  # a DMARC failure under p=reject is refused with 550 5.7.1
    dmarc_quarantine: bool = True  # under p=quarantine: accepted with "X-Hayate-Quarantine: dmarc"
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
    cache_ttl: float = 30.0  # seconds a lookup is cached per worker (changes made elsewhere,
    #                          e.g. by `hayate suppression`, are seen after at most this)


class EventsConfig(_Section):
    """Per-recipient delivery events (hayate.events)."""

    enabled: bool = True
    flush_interval: float = 0.5  # seconds between batched writes
    batch_size: int = 1000  # a write happens at once when this many are waiting
    retention_days: int = 30  # older events are deleted
    max_buffer: int = 100_000  # events held in memory while the store fails; then the
    #                            oldest are dropped (with a warning)


# --- mailboxes (issue 4) ------------------------------------------------------------------


class RetentionRule(_Section):
    """Messages older than ``days`` (by internal date) in a folder are expunged by the
    hourly sweep (hayate.mailbox.retention)."""

    folder: str  # a folder name ("Trash", "Lists/old") or a special use ("\\Trash", "\\Junk")
    days: float = Field(gt=0)


class MailboxConfig(_Section):
    """IMAP and POP3 sessions (hayate.imap, hayate.pop3) and the mailbox store around them."""

    # Passwords (LOGIN, AUTHENTICATE, USER/PASS, AUTH) only over TLS, like Dovecot's
    # disable_plaintext_auth; set true only for tests on loopback.
    plaintext_auth: bool = False
    command_timeout: float = 1800.0  # IMAP autologout: RFC 3501 asks for at least 30 minutes
    idle_timeout: float = 1800.0  # one IDLE lasts at most this long, then the server ends it
    pop3_timeout: float = 600.0  # RFC 1939: at least 10 minutes
    max_connections_per_user: int = 20  # IMAP+POP3 sessions of one account, all workers
    max_bad_commands: int = 20  # BAD replies in one session, then BYE
    auth_failure_delay: float = 1.0  # seconds before answering a wrong password (slows guessing)
    # Password guessing over many connections (IMAP and POP3 together, per worker process):
    # after this many logins within auth_failure_window, further logins for that address, or
    # from that client IP, are refused without checking the password until the window has
    # passed. A successful login clears the address's count.
    max_auth_failures_per_address: int = 10
    max_auth_failures_per_ip: int = 100
    auth_failure_window: float = 900.0  # seconds
    # Clients that log in for many users (a webmail on this host): no per-IP limit for them,
    # like Dovecot's login_trusted_networks. The per-address limit still applies.
    trusted_networks: list[str] = Field(default_factory=list)  # e.g. ["127.0.0.1/32"]
    login_timeout: float = 60.0  # IMAP: seconds from connecting to a successful login, like Dovecot
    max_connections: int = 1000  # IMAP, POP3 connections per listener and worker; then refused
    max_line_length: int = 65536  # bytes of one command line (without its literals)
    watch_interval: float = 0.2  # seconds between looks for changes by other processes
    retention: list[RetentionRule] = Field(default_factory=list)

    _trusted_networks = field_validator("trusted_networks")(_check_networks)


class AutoconfigConfig(_Section):
    """Thunderbird autoconfig and Outlook Autodiscover on the HTTP listener
    (hayate.http.autoconfig). Server names and ports come from ``hostname`` and ``[listen]``
    unless given here (the names and ports clients must use from outside)."""

    enabled: bool = True
    display_name: str = ""  # provider name shown by the client; default: the domain
    imap_host: str | None = None
    smtp_host: str | None = None
    pop3_host: str | None = None
    imaps_port: int | None = None
    imap_port: int | None = None
    pop3s_port: int | None = None
    pop3_port: int | None = None
    submissions_port: int | None = None
    submission_port: int | None = None


def _dupes(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


class EgressSource(_Section):
    """One local address outbound connections can leave from."""

    name: str  # referred to by pools; shown in logs, events and `hayate queue sites`
    address: str | None = None  # local IP to bind; None: the system's choice
    helo: str | None = None  # EHLO name for this source (match its PTR); default: hostname
    warmup: str | None = None  # name of a [warmup.schedules] curve while this IP is new
    warmup_start: str | None = None  # "YYYY-MM-DD": day 1 of the warm-up (in warmup.timezone)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a source needs a name")
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError as exc:
            raise ValueError(f"not an IP address: {value!r}") from exc

    @field_validator("helo")
    @classmethod
    def _helo(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value or any(c.isspace() for c in value) or len(value) > 255:
            raise ValueError(f"not a host name for EHLO: {value!r}")
        return value

    @field_validator("warmup_start")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            datetime.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"expected a date 'YYYY-MM-DD', got {value!r}") from exc
        if len(value) != 10:
            raise ValueError(f"expected a date 'YYYY-MM-DD', got {value!r}")
        return value

    @model_validator(mode="after")
    def _warmup_pair(self) -> EgressSource:
        if self.warmup is not None and self.warmup_start is None:
            raise ValueError(f'source {self.name!r}: warmup needs warmup_start = "YYYY-MM-DD"')
        if self.warmup_start is not None and self.warmup is None:
            raise ValueError(f"source {self.name!r}: warmup_start without a warmup schedule")
        return self


class PoolMember(_Section):
    source: str  # name of an [[egress.sources]] entry
    weight: int = 1  # share of the pool's traffic, relative to the other members (>= 1)

    @field_validator("weight")
    @classmethod
    def _weight(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"weight must be at least 1, got {value}")
        return value


class EgressPool(_Section):
    name: str  # referred to by default_pool, domain_pools and stream_pools
    sources: list[PoolMember]  # the members; each source at most once

    @field_validator("sources")
    @classmethod
    def _members(cls, value: list[PoolMember]) -> list[PoolMember]:
        if not value:
            raise ValueError("a pool needs at least one source")
        dupes = _dupes([m.source for m in value])
        if dupes:
            raise ValueError(f"source listed twice in one pool: {', '.join(dupes)}")
        return value


class EgressConfig(_Section):
    """Source addresses and pools (hayate.delivery.egress); no sources: the system's choice.

    A message's pool: ``domain_pools`` for its sending domain (or a parent domain), else
    ``stream_pools`` for its stream, else ``default_pool``, else every source with weight 1.
    """

    sources: list[EgressSource] = Field(default_factory=list)
    pools: list[EgressPool] = Field(default_factory=list)
    default_pool: str | None = None  # name of a pool
    domain_pools: dict[str, str] = Field(default_factory=dict)  # sending domain → pool
    stream_pools: dict[str, str] = Field(default_factory=dict)  # stream → pool

    @field_validator("domain_pools")
    @classmethod
    def _lower_domains(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.lower().rstrip("."): v for k, v in value.items()}

    @model_validator(mode="after")
    def _references(self) -> EgressConfig:
        problems: list[str] = []
        names = [s.name for s in self.sources]
        problems += [f"source name used twice: {n!r}" for n in _dupes(names)]
        pools = [p.name for p in self.pools]
        problems += [f"pool name used twice: {n!r}" for n in _dupes(pools)]
        known = set(names)
        for pool in self.pools:
            for member in pool.sources:
                if member.source not in known:
                    problems.append(f"pool {pool.name!r} names an unknown source {member.source!r}")
        if self.pools and not self.sources:
            problems.append("pools are defined but there are no [[egress.sources]]")
        refs = [("default_pool", self.default_pool)] if self.default_pool is not None else []
        refs += [(f"domain_pools.{k}", v) for k, v in self.domain_pools.items()]
        refs += [(f"stream_pools.{k}", v) for k, v in self.stream_pools.items()]
        for where, pool_name in refs:
            if pool_name not in pools:
                problems.append(f"{where} names an unknown pool {pool_name!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class WarmupSchedule(_Section):
    # Messages per day per provider on day 1, 2, ... of the warm-up; after the last day
    # there is no cap.
    daily: list[int]

    @field_validator("daily")
    @classmethod
    def _daily(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("a warm-up schedule needs at least one day")
        if any(n < 0 for n in value):
            raise ValueError("daily caps cannot be negative")
        return value


class WarmupConfig(_Section):
    """IP warm-up (hayate.queue.warmup)."""

    schedules: dict[str, WarmupSchedule] = Field(default_factory=dict)
    timezone: str = "UTC"  # the day boundary of the daily caps (an IANA name, "Asia/Tokyo")
    # Seconds between writes of this worker's counts to data_dir/warmup.db (and reads of the
    # other workers'); the node may overshoot a cap by what the workers send in that time.
    sync_interval: float = 1.0

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("sync_interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if value < 0:
            raise ValueError("sync_interval cannot be negative")
        return value


class StreamsConfig(_Section):
    """Message streams: transactional mail is never queued behind bulk mail.

    Used by ingest (which stream a message belongs to) and the scheduler (the order in
    which waiting mail is served: see hayate.queue.streams).
    """

    default: str = "transactional"  # stream of mail that names none (and no domain rule)
    header: str = "X-Hayate-Stream"  # a client may choose the stream; removed at ingest
    domains: dict[str, str] = Field(default_factory=dict)  # sending domain → its stream
    # Streams in the order they are served: the first one always goes first. Streams not
    # listed (any name a client may give) come after these, in the order first seen.
    priority: list[str] = Field(default_factory=lambda: ["transactional", "bulk"])

    @field_validator("default", "priority", "domains")
    @classmethod
    def _lower_names(cls, value: object) -> object:
        if isinstance(value, str):
            return value.lower()
        if isinstance(value, list):
            return [str(v).lower() for v in value]
        if isinstance(value, dict):
            return {str(k).lower().rstrip("."): str(v).lower() for k, v in value.items()}
        return value


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
    mailbox: MailboxConfig = MailboxConfig()
    autoconfig: AutoconfigConfig = AutoconfigConfig()

    @model_validator(mode="after")
    def _warmup_schedules_exist(self) -> Config:
        for source in self.egress.sources:
            if source.warmup is not None and source.warmup not in self.warmup.schedules:
                raise ValueError(
                    f"egress source {source.name!r} names an unknown warm-up schedule "
                    f"{source.warmup!r} (define it under [warmup.schedules.{source.warmup}])"
                )
        return self

    @field_validator("local_domains")
    @classmethod
    def _lower_domains(cls, value: list[str]) -> list[str]:
        return [d.lower().rstrip(".") for d in value]

    _relay_networks = field_validator("relay_networks")(_check_networks)

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
