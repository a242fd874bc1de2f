"""Traffic shaping as data: which *site* a recipient domain belongs to, and its limits.

Big receivers judge a sender by how it behaves towards *them*, not towards each of their
domains: every Google Workspace customer domain is served by Google's MX hosts. So the
scheduler shapes traffic per **site**, found by :meth:`Shaping.site_for`:

1. a domain listed in a provider's ``domains`` belongs to that provider (site "gmail");
2. else, the first MX host (in preference order) that ends with one of a provider's
   ``mx_suffixes`` makes the domain that provider's (a Workspace domain → "gmail");
3. else the site is the **MX rollup** "mx:" + the sorted MX host names joined by ",":
   every domain with the same MX host set counts as one site;
4. without MX hosts (a transport nexthop, an implicit MX) the site is the domain itself.

The **limits** of a (site, domain) pair (:meth:`Shaping.limits_for`) are built in layers,
each layer setting only the keys it names:

1. defaults from ``[delivery]`` (connections_per_destination, messages_per_connection,
   recipients_per_transaction; no rate limits);
2. ``[default]`` of the shipped presets, then of the operator's file;
3. the provider preset (``presets.toml`` beside this module; ``[shaping] presets = false``
   turns every shipped table off). A shipped value only ever *lowers* a limit: it never
   raises one above what layers 1–2 say;
4. the operator's ``[provider.<name>]`` (its values are taken as given);
5. the operator's ``[site."<name>"]``;
6. the operator's ``[domain."<domain>"]``.

The operator's file is ``[shaping] file``. Every table is optional; unknown keys are
errors. Example::

    [default]
    connections = 10                 # at once, per (egress source, site)
    messages_per_connection = 500    # then the connection is closed and a new one opened
    recipients_per_transaction = 100 # RCPTs per message transaction
    messages_per_minute = 600        # a number > 0, or "unlimited" (the default)
    messages_per_hour = "unlimited"
    connections_per_minute = 60      # new connections

    [provider.gmail]                 # change a shipped provider: only the keys given change
    connections = 5

    [provider.example-isp]           # a provider of your own
    domains = ["example-isp.net", "example-isp.co.uk"]   # recipient domains
    mx_suffixes = ["mx.example-isp.net"]                 # any MX host ending so belongs here
    connections = 2
    messages_per_minute = 100

    [[provider.example-isp.automation]]  # rules for this provider's replies (replace the
    codes = ["421", "4.7.0"]             # shipped ones when given)
    match = "too busy"
    action = "suspend"
    duration = "20m"

    [provider.icloud]
    enabled = false                  # drop one shipped provider

    [site."mx:mx1.example.org,mx2.example.org"]
    connections = 3

    [domain."example.net"]
    messages_per_hour = 1000

    [[automation]]                   # global rules, checked after site and provider rules
    name = "greylisted"              # optional: shown in logs instead of "global rule N"
    codes = ["450", "451"]           # any of them: a reply code (prefix) or enhanced prefix
    match = "greylist"               # a regular expression, searched case-insensitively
    action = "slow"                  # "suspend" or "slow"
    duration = "10m"                 # "90s", "30m", "1h30m", "2d" or seconds
    factor = 0.5                     # slow: rates and connections x factor (0 < f <= 1)
    max_connections = 2              # slow: at most this many connections at once
    threshold = 5                    # fire after 5 matching replies ...
    window = "5m"                    # ... within 5 minutes (default: the first one fires)

Rules and their effects are described in :mod:`hayate.queue.automation`; the governor of a
site checks the site's rules, then its provider's, then the operator's global rules, then
the shipped global rules, and the first match fires.

``site_for`` and ``limits_for`` are called for every job: their answers are kept in
dictionaries, so after the first call for a key they are one lookup.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hayate.config import ConfigError, DeliveryConfig, ShapingConfig
from hayate.queue.automation import PathGovernor, Rule, check_code_pattern, parse_duration

PRESETS_NAME = "hayate/queue/presets.toml"
_CACHE_LIMIT = 100_000  # entries per cache before it is cleared (bounds memory)


@dataclass(frozen=True, slots=True)
class Limits:
    connections: int  # at once, per (egress source, site)
    messages_per_connection: int
    recipients_per_transaction: int
    messages_per_minute: float | None  # None: no limit
    messages_per_hour: float | None
    connections_per_minute: float | None  # new connections


@dataclass(frozen=True, slots=True)
class Site:
    name: str  # the rollup key: a provider name ("gmail") or "mx:<sorted MX hosts>"
    provider: str | None  # the preset that matched, or None


# --- the file format ----------------------------------------------------------------------

_COUNT_KEYS = ("connections", "messages_per_connection", "recipients_per_transaction")
_RATE_KEYS = ("messages_per_minute", "messages_per_hour", "connections_per_minute")
_LIMIT_KEYS = _COUNT_KEYS + _RATE_KEYS

Count = Annotated[int, Field(gt=0, strict=True)]


def _check_rate(value: object) -> float | None:
    if value == "unlimited":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f'expected a number or "unlimited", got {value!r}')
    if not 0 < value < float("inf"):
        raise ValueError(f"a rate must be more than zero, got {value!r}")
    return float(value)


Rate = Annotated[float | None, BeforeValidator(_check_rate)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _LimitsTable(_Table):
    connections: Count | None = None
    messages_per_connection: Count | None = None
    recipients_per_transaction: Count | None = None
    messages_per_minute: Rate | None = None
    messages_per_hour: Rate | None = None
    connections_per_minute: Rate | None = None

    def patch(self) -> dict[str, int | float | None]:
        """The limit keys this table sets ("unlimited" → None)."""
        out: dict[str, int | float | None] = {}
        for key in _LIMIT_KEYS:
            if key in self.model_fields_set:
                out[key] = getattr(self, key)
        return out


class _RuleTable(_Table):
    name: str | None = None
    match: str | None = None
    codes: list[str] = Field(default_factory=list)
    action: Literal["suspend", "slow"]
    duration: str | float
    factor: Annotated[float, Field(gt=0, le=1)] = 0.5
    max_connections: Count | None = None
    threshold: Count = 1
    window: str | float = 300.0

    @field_validator("match")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @field_validator("codes")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        return [check_code_pattern(entry) for entry in value]

    @field_validator("duration", "window")
    @classmethod
    def _duration(cls, value: str | float) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _something_to_match(self) -> _RuleTable:
        if self.match is None and not self.codes:
            raise ValueError("a rule needs 'match' or 'codes'")
        return self

    def to_rule(self, label: str) -> Rule:
        slow = self.action == "slow"
        return Rule(
            label=self.name or label,
            action=self.action,
            duration=float(self.duration),
            codes=tuple(self.codes),
            pattern=re.compile(self.match, re.IGNORECASE) if self.match else None,
            factor=self.factor if slow else 1.0,
            max_connections=self.max_connections if slow else None,
            threshold=self.threshold,
            window=float(self.window),
        )


def _hostname_list(value: list[str]) -> list[str]:
    out = []
    for item in value:
        name = item.strip().lower().strip(".")
        if not name or " " in name:
            raise ValueError(f"not a domain name: {item!r}")
        out.append(name)
    return out


class _ProviderTable(_LimitsTable):
    enabled: bool = True
    domains: list[str] = Field(default_factory=list)
    mx_suffixes: list[str] = Field(default_factory=list)
    automation: list[_RuleTable] = Field(default_factory=list)

    _names = field_validator("domains", "mx_suffixes")(_hostname_list)


class _SiteTable(_LimitsTable):
    automation: list[_RuleTable] = Field(default_factory=list)


class ShapingFile(_Table):
    """One shaping file as validated (the shipped presets or the operator's)."""

    default: _LimitsTable = _LimitsTable()
    provider: dict[str, _ProviderTable] = Field(default_factory=dict)
    site: dict[str, _SiteTable] = Field(default_factory=dict)
    domain: dict[str, _LimitsTable] = Field(default_factory=dict)
    automation: list[_RuleTable] = Field(default_factory=list)


def _parse_file(text: str, source: str) -> ShapingFile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        parsed = ShapingFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
    return parsed


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        line = f"  {where}: {msg}"
        if line not in problems:
            problems.append(line)
    return f"{source}: invalid shaping:\n" + "\n".join(problems)


# --- the resolved model -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Provider:
    name: str
    domains: frozenset[str]
    mx_suffixes: tuple[str, ...]
    preset: Mapping[str, int | float | None]  # shipped limits (only lower)
    operator: Mapping[str, int | float | None]  # the operator's limits (as given)
    rules: tuple[Rule, ...]


def _merge(
    name: str, shipped: _ProviderTable | None, mine: _ProviderTable | None
) -> _Provider | None:
    """A shipped provider with the operator's table over it (None when disabled).

    The operator's ``enabled``, ``domains``, ``mx_suffixes`` and ``automation`` replace the
    shipped ones when given; limits stay in two layers (see the module docstring).
    """
    given = mine.model_fields_set if mine is not None else set()

    def pick(key: str) -> Any:
        source = mine if key in given or shipped is None else shipped
        return getattr(source, key)

    if not pick("enabled"):
        return None
    return _Provider(
        name=name,
        domains=frozenset(pick("domains")),
        mx_suffixes=tuple(pick("mx_suffixes")),
        preset=shipped.patch() if shipped is not None else {},
        operator=mine.patch() if mine is not None else {},
        rules=_rules(pick("automation"), name),
    )


def _rules(tables: Sequence[_RuleTable], label: str) -> tuple[Rule, ...]:
    return tuple(t.to_rule(f"{label} rule {i + 1}") for i, t in enumerate(tables))


def _lower(current: dict[str, int | float | None], patch: Mapping[str, int | float | None]) -> None:
    for key, value in patch.items():
        if value is None:
            continue  # "unlimited" in a preset never lifts a limit
        old = current[key]
        current[key] = value if old is None else min(old, value)


class Shaping:
    """Sites, limits and automation rules, resolved from the presets and the operator's file.

    Build it with :meth:`from_config`; see the module docstring for the layering.
    """

    def __init__(
        self,
        base: Mapping[str, int | float | None],
        providers: Sequence[_Provider],
        sites: Mapping[str, _SiteTable],
        domains: Mapping[str, _LimitsTable],
        global_rules: Sequence[Rule],
    ) -> None:
        self._base = dict(base)
        self._providers = {p.name: p for p in providers}
        self._by_domain = {d: p.name for p in providers for d in p.domains}
        self._suffixes = [(s, p.name) for p in providers for s in p.mx_suffixes]
        self._sites = dict(sites)
        self._domains = dict(domains)
        self._global_rules = tuple(global_rules)
        self._site_rules = {name: _rules(t.automation, f"site {name}") for name, t in sites.items()}
        self._site_cache: dict[tuple[str, tuple[str, ...]], Site] = {}
        self._limits_cache: dict[tuple[str, str], Limits] = {}
        self._rules_cache: dict[str, tuple[Rule, ...]] = {}

    @classmethod
    def from_config(cls, cfg: ShapingConfig, delivery: DeliveryConfig) -> Shaping:
        """Read the shipped presets (unless turned off) and the operator's file.

        Raises ConfigError naming the file and the key on bad input.
        """
        preset = load_presets() if cfg.presets else ShapingFile()
        operator = ShapingFile()
        if cfg.file is not None:
            operator = _parse_file(_read(cfg.file), str(cfg.file))
        return cls.from_files(preset, operator, delivery)

    @classmethod
    def from_files(
        cls, preset: ShapingFile, operator: ShapingFile, delivery: DeliveryConfig
    ) -> Shaping:
        base: dict[str, int | float | None] = {
            "connections": delivery.connections_per_destination,
            "messages_per_connection": delivery.messages_per_connection,
            "recipients_per_transaction": delivery.recipients_per_transaction,
            "messages_per_minute": None,
            "messages_per_hour": None,
            "connections_per_minute": None,
        }
        base.update(preset.default.patch())
        base.update(operator.default.patch())
        names = [*preset.provider, *(n for n in operator.provider if n not in preset.provider)]
        merged = (_merge(n, preset.provider.get(n), operator.provider.get(n)) for n in names)
        providers = [p for p in merged if p is not None]
        sites = {**preset.site, **operator.site}
        domains = {
            d.lower().rstrip("."): t for d, t in {**preset.domain, **operator.domain}.items()
        }
        global_rules = _rules(operator.automation, "global") + _rules(
            preset.automation, "shipped global"
        )
        return cls(base, providers, sites, domains, global_rules)

    # --- per-job lookups --------------------------------------------------------------

    def site_for(self, domain: str, mx_hosts: Sequence[str]) -> Site:
        """The site of a recipient domain with these MX hosts (in preference order)."""
        key = (domain, tuple(mx_hosts))
        site = self._site_cache.get(key)
        if site is None:
            site = self._find_site(
                domain.lower().rstrip("."), [h.lower().rstrip(".") for h in mx_hosts]
            )
            if len(self._site_cache) >= _CACHE_LIMIT:
                self._site_cache.clear()
            self._site_cache[key] = site
        return site

    def _find_site(self, domain: str, hosts: list[str]) -> Site:
        provider = self._by_domain.get(domain)
        if provider is not None:
            return Site(provider, provider)
        for host in hosts:
            for suffix, name in self._suffixes:
                if host == suffix or host.endswith("." + suffix):
                    return Site(name, name)
        if not hosts:
            return Site(domain, None)
        return Site("mx:" + ",".join(sorted(set(hosts))), None)

    def limits_for(self, site: Site, domain: str) -> Limits:
        """The configured limits of ``domain`` within ``site`` (before any automation)."""
        key = (site.name, domain)
        limits = self._limits_cache.get(key)
        if limits is None:
            limits = self._resolve(site, domain.lower().rstrip("."))
            if len(self._limits_cache) >= _CACHE_LIMIT:
                self._limits_cache.clear()
            self._limits_cache[key] = limits
        return limits

    def _resolve(self, site: Site, domain: str) -> Limits:
        values = dict(self._base)
        provider = self._providers.get(site.provider) if site.provider else None
        if provider is not None:
            _lower(values, provider.preset)
            values.update(provider.operator)
        site_table = self._sites.get(site.name)
        if site_table is not None:
            values.update(site_table.patch())
        domain_table = self._domains.get(domain)
        if domain_table is not None:
            values.update(domain_table.patch())
        return Limits(
            connections=int(values["connections"] or 1),
            messages_per_connection=int(values["messages_per_connection"] or 1),
            recipients_per_transaction=int(values["recipients_per_transaction"] or 1),
            messages_per_minute=_rate(values["messages_per_minute"]),
            messages_per_hour=_rate(values["messages_per_hour"]),
            connections_per_minute=_rate(values["connections_per_minute"]),
        )

    def rules_for(self, site: Site) -> tuple[Rule, ...]:
        """The automation rules of a site, in the order they are checked."""
        rules = self._rules_cache.get(site.name)
        if rules is None:
            provider = self._providers.get(site.provider) if site.provider else None
            rules = (
                self._site_rules.get(site.name, ())
                + (provider.rules if provider is not None else ())
                + self._global_rules
            )
            self._rules_cache[site.name] = rules
        return rules

    def governor(self, site: Site) -> PathGovernor:
        """A fresh governor for one (egress source, site) path."""
        return PathGovernor(self.rules_for(site))

    @property
    def providers(self) -> tuple[str, ...]:
        """Names of the providers in use (shipped and the operator's), for display."""
        return tuple(self._providers)


def _rate(value: int | float | None) -> float | None:
    return None if value is None else float(value)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: shaping file not found ([shaping] file)") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read shaping file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: shaping file is not UTF-8 text") from exc


def load_presets() -> ShapingFile:
    """The provider presets shipped with Hayate (package data ``presets.toml``)."""
    text = resources.files("hayate.queue").joinpath("presets.toml").read_text(encoding="utf-8")
    return _parse_file(text, PRESETS_NAME)


def parse_shaping(text: str, source: str = "<shaping>") -> ShapingFile:
    """Parse and validate one shaping file's text; raises ConfigError (for tools and tests)."""
    return _parse_file(text, source)
