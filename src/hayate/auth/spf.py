"""SPF (RFC 7208): may this client IP send mail for this envelope sender or HELO name?

Our own asynchronous evaluator of ``check_host()``. pyspf is the usual Python choice, but it
does its DNS lookups with blocking calls, which would stall the event loop (and every other
SMTP session of the worker) for the length of each lookup; here every lookup goes through the
:class:`~hayate.core.seams.TxtResolver` seam, i.e. the cached asyncio resolver.

What is implemented:

* **Records**: the one TXT record of the domain starting with ``v=spf1``; none → "none",
  more than one → "permerror". The whole record is parsed before evaluation, so a syntax
  error anywhere is a "permerror" (RFC 7208 4.6).
* **Mechanisms** all, include, a, mx, ptr, ip4, ip6, exists with qualifiers ``+ - ~ ?`` and
  (dual) CIDR lengths; **modifiers** redirect and exp (unknown modifiers are ignored).
* **Macros** (section 7): ``%{s l o d i p h v}`` (and ``c r t`` in explanations) with the
  digit and ``r`` transformers and the delimiters ``. - + , / _ =``; upper-case letters are
  URL-escaped; ``%% %_ %-``. Expanded names longer than 253 characters lose labels on the left.
* **Limits** (4.6.4): more than 10 terms that cause DNS lookups (include, a, mx, ptr, exists,
  redirect) → "permerror"; more than 2 lookups answered with NXDOMAIN or no records (void
  lookups: an ``a`` for a name with addresses of the other family only is one, since the
  receiver asks for the client's family alone, as is an ``exists`` for a name without an A
  record) → "permerror"; more than 10 MX hosts → "permerror"; only the first 10 PTR names
  are looked at. The whole evaluation is bounded by ``timeout`` seconds → "temperror".
* **Identities**: a null envelope sender is checked as ``postmaster@<helo>`` (2.4); a sender
  without a local part uses "postmaster". :func:`check_helo` checks the HELO identity alone
  (2.3), which is only possible when :func:`helo_is_domain` (not an address literal, not a
  bare name).
* **Errors**: a temporary DNS failure anywhere → "temperror"; NXDOMAIN is a void answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
import urllib.parse
from dataclasses import dataclass

from hayate.core.seams import DnsError, TxtResolver

MAX_LOOKUPS = 10  # terms that cause DNS queries, per evaluation (RFC 7208 4.6.4)
MAX_VOID_LOOKUPS = 2  # lookups answered with NXDOMAIN or no records
MAX_MX_HOSTS = 10
MAX_PTR_NAMES = 10
DEFAULT_TIMEOUT = 20.0  # seconds for a whole evaluation (RFC 7208 4.6.4 suggests >= 20)

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address

_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
_NEEDS_DNS = {"include", "a", "mx", "ptr", "exists"}
_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9._-]*)=(.*)$", re.S)
_MECHANISM = re.compile(r"^([+\-~?]?)([A-Za-z][A-Za-z0-9]*)(.*)$", re.S)
_DUAL_CIDR = re.compile(r"^(.*?)(?:/(0|[1-9][0-9]?))?(?://(0|[1-9][0-9]{0,2}))?$", re.S)
_MACRO = re.compile(r"%(?:\{([A-Za-z])([0-9]*)(r?)([.\-+,/_=]*)\}|(%)|(_)|(-))")
_TOPLABEL = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9]")
_LABEL = re.compile(r"[A-Za-z0-9_-]+")  # letters, digits, hyphens (and "_" of _spf names)
_DOMAIN_LETTERS = set("slodiphv")
_EXP_LETTERS = _DOMAIN_LETTERS | set("crt")


@dataclass(frozen=True, slots=True)
class SpfResult:
    """The outcome of one SPF check (RFC 7208 2.6 result names)."""

    result: str  # "pass"|"fail"|"softfail"|"neutral"|"none"|"temperror"|"permerror"
    domain: str  # the identity's domain whose policy was checked
    mechanism: str = ""  # the term that matched ("-all", "ip4:192.0.2.0/24"), "default"
    explanation: str = ""  # exp= text of a "fail" (untrusted: from the sender's DNS)
    identity: str = "mailfrom"  # "mailfrom" or "helo" (null sender, or check_helo)
    sender: str = ""  # the address checked (postmaster@helo for a null sender)
    reason: str = ""  # why: "no SPF record", "too many DNS lookups", the DNS error, ...
    lookups: int = 0  # DNS-querying terms evaluated


class SpfSyntaxError(ValueError):
    """A record (or macro) that does not follow the grammar: "permerror"."""


class _Abort(Exception):
    """Stops the evaluation with ``result`` ("temperror" or "permerror")."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


# -- the record ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mechanism:
    """One directive: qualifier, mechanism name, its domain-spec or network, CIDR lengths."""

    qualifier: str  # "+", "-", "~" or "?"
    name: str  # lower case
    spec: str = ""  # domain-spec (macro-string) or "" for the current domain
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # ip4 / ip6
    cidr4: int = 32
    cidr6: int = 128
    text: str = ""  # as written, for SpfResult.mechanism

    @property
    def result(self) -> str:
        return _QUALIFIERS[self.qualifier]


@dataclass(frozen=True, slots=True)
class SpfRecord:
    mechanisms: tuple[Mechanism, ...]
    redirect: str | None = None
    exp: str | None = None


def is_spf_record(text: str) -> bool:
    """Does this TXT string claim to be an SPF record ("v=spf1" then a space or the end)?"""
    head = text[:7].lower()
    return head == "v=spf1" or head == "v=spf1 "


def parse_record(text: str) -> SpfRecord:
    """Parse a whole ``v=spf1`` record; raises :class:`SpfSyntaxError` for any bad term."""
    if not is_spf_record(text):
        raise SpfSyntaxError("not an SPF record")
    mechanisms: list[Mechanism] = []
    modifiers: dict[str, str] = {}
    for term in text[6:].split(" "):
        if not term:
            continue
        modifier = _MODIFIER.match(term)
        if modifier is not None:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in ("redirect", "exp"):
                if name in modifiers:
                    raise SpfSyntaxError(f"{name}= given twice")
                _check_domain_spec(value, name)
            else:
                _check_macros(value, _DOMAIN_LETTERS, term)
            modifiers[name] = value
            continue
        mechanisms.append(_parse_mechanism(term))
    return SpfRecord(tuple(mechanisms), modifiers.get("redirect"), modifiers.get("exp"))


def _parse_mechanism(term: str) -> Mechanism:
    match = _MECHANISM.match(term)
    if match is None:
        raise SpfSyntaxError(f"bad term {term!r}")
    qualifier, name, rest = match.group(1) or "+", match.group(2).lower(), match.group(3)
    if name not in _MECHANISMS:
        raise SpfSyntaxError(f"unknown mechanism {term!r}")
    if name == "all":
        if rest:
            raise SpfSyntaxError(f"bad term {term!r}")
        return Mechanism(qualifier, name, text=term)
    if name in ("ip4", "ip6"):
        return _parse_ip(qualifier, name, rest, term)
    if rest and rest[0] not in ":/":
        raise SpfSyntaxError(f"unknown mechanism {term!r}")
    if name in ("include", "exists") and not rest.startswith(":"):
        raise SpfSyntaxError(f"{name} needs a domain: {term!r}")
    cidr4, cidr6, spec = 32, 128, rest[1:] if rest.startswith(":") else rest
    if name in ("a", "mx"):
        cidrs = _DUAL_CIDR.match(rest if not rest.startswith(":") else rest[1:])
        assert cidrs is not None  # the pattern matches any string
        spec = cidrs.group(1)
        cidr4 = int(cidrs.group(2)) if cidrs.group(2) else 32
        cidr6 = int(cidrs.group(3)) if cidrs.group(3) else 128
        if cidr4 > 32 or cidr6 > 128:
            raise SpfSyntaxError(f"CIDR length out of range in {term!r}")
        if not rest.startswith(":") and spec:
            raise SpfSyntaxError(f"bad term {term!r}")
    if rest.startswith(":") or spec:
        _check_domain_spec(spec, term)
    return Mechanism(qualifier, name, spec, None, cidr4, cidr6, term)


def _parse_ip(qualifier: str, name: str, rest: str, term: str) -> Mechanism:
    if not rest.startswith(":"):
        raise SpfSyntaxError(f"{name} needs an address: {term!r}")
    address, slash, length = rest[1:].partition("/")
    limit = 32 if name == "ip4" else 128
    if slash and not (length.isdigit() and (length == "0" or length[0] != "0")):
        raise SpfSyntaxError(f"bad CIDR length in {term!r}")
    bits = int(length) if slash else limit
    if bits > limit:
        raise SpfSyntaxError(f"CIDR length out of range in {term!r}")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise SpfSyntaxError(f"bad address in {term!r}") from exc
    if ip.version != (4 if name == "ip4" else 6):
        raise SpfSyntaxError(f"wrong address family in {term!r}")
    network = ipaddress.ip_network(f"{ip}/{bits}", strict=False)
    return Mechanism(qualifier, name, "", network, text=term)


def _check_macros(value: str, letters: set[str], where: str, *, spaces: bool = False) -> None:
    """Every "%" must start a valid macro; literal characters must be visible ASCII."""
    pos = 0
    for macro in _MACRO.finditer(value):
        literal = value[pos : macro.start()]
        if "%" in literal:
            raise SpfSyntaxError(f"bad macro in {where!r}")
        letter = macro.group(1)
        if letter is not None:
            if letter.lower() not in letters:
                raise SpfSyntaxError(f"unknown macro letter {letter!r} in {where!r}")
            if macro.group(2) and int(macro.group(2)) == 0:
                raise SpfSyntaxError(f"zero labels requested in {where!r}")
        pos = macro.end()
    if "%" in value[pos:]:
        raise SpfSyntaxError(f"bad macro in {where!r}")
    low = 0x20 if spaces else 0x21
    if not all(low <= ord(ch) <= 0x7E for ch in value):
        raise SpfSyntaxError(f"bad character in {where!r}")


def _check_domain_spec(spec: str, where: str) -> None:
    """A domain-spec must end in a top label ("example.com") or in a macro (RFC 7208 7.1)."""
    _check_macros(spec, _DOMAIN_LETTERS, where)
    body = spec[:-1] if spec.endswith(".") else spec
    if body.endswith("}"):
        return
    head, dot, last = body.rpartition(".")
    if not dot or not head or _TOPLABEL.fullmatch(last) is None:
        raise SpfSyntaxError(f"bad domain in {where!r}")


# -- evaluation ---------------------------------------------------------------------------


def _valid_domain(domain: str) -> bool:
    """A multi-label name with labels of 1..63 characters (RFC 7208 4.3)."""
    labels = domain.rstrip(".").split(".")
    if len(labels) < 2 or len(domain) > 253 or labels[-1].isdigit():
        return False  # one label, too long, or an IP address
    return all(0 < len(label) <= 63 and _LABEL.fullmatch(label) for label in labels)


def _client_ip(ip: str) -> _IP:
    address = ipaddress.ip_address(ip.strip().removeprefix("[").removesuffix("]"))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class _Evaluation:
    """One check_host() run with its counters (shared by includes and redirects)."""

    def __init__(
        self, ip: _IP, sender: str, helo: str, resolver: TxtResolver, receiver: str, now: float
    ) -> None:
        self.ip = ip
        self.sender = sender
        local, _, domain = sender.rpartition("@")
        self.local = local or "postmaster"
        self.sender_domain = domain.lower()
        self.helo = helo
        self.resolver = resolver
        self.receiver = receiver
        self.now = now
        self.lookups = 0
        self.voids = 0
        self._validated: list[str] | None = None

    # -- counters

    def count_lookup(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _Abort("permerror", f"more than {MAX_LOOKUPS} DNS lookups")

    def count_void(self) -> None:
        self.voids += 1
        if self.voids > MAX_VOID_LOOKUPS:
            raise _Abort("permerror", f"more than {MAX_VOID_LOOKUPS} void DNS lookups")

    # -- DNS, with errors mapped to results

    async def addresses(
        self, name: str, *, void: bool = True, family: int | None = None
    ) -> list[_IP]:
        """The addresses of ``name`` of one family (the client's unless ``family`` says 4 or
        6). With ``void``, an answer without such an address counts as a void lookup (RFC
        7208 4.6.4: the receiver's query for that one record type came back empty)."""
        wanted = family or self.ip.version
        try:
            found = await self.resolver.resolve_addresses(name)
        except DnsError as exc:
            if exc.temporary:
                raise _Abort("temperror", str(exc)) from exc
            found = []
        matching = [ip for ip in map(_client_ip, found) if ip.version == wanted]
        if not matching and void:
            self.count_void()
        return matching

    async def spf_record(self, domain: str) -> SpfRecord | None:
        try:
            texts = await self.resolver.resolve_txt(domain)
        except DnsError as exc:
            if exc.temporary:
                raise _Abort("temperror", str(exc)) from exc
            return None
        records = [t for t in texts if is_spf_record(t)]
        if not records:
            return None
        if len(records) > 1:
            raise _Abort("permerror", f"{domain} publishes {len(records)} SPF records")
        try:
            return parse_record(records[0])
        except SpfSyntaxError as exc:
            raise _Abort("permerror", f"{domain}: {exc}") from exc

    async def validated_names(self) -> list[str]:
        """PTR names of the client whose addresses include it (RFC 7208 5.5), cached."""
        if self._validated is not None:
            return self._validated
        try:
            names = (await self.resolver.resolve_ptr(str(self.ip)))[:MAX_PTR_NAMES]
        except DnsError:
            names = []
        valid: list[str] = []
        for name in names:
            try:
                found = await self.resolver.resolve_addresses(name)
            except DnsError:
                continue
            if self.ip in {_client_ip(a) for a in found}:
                valid.append(name.lower().rstrip("."))
        self._validated = valid
        return valid

    # -- macros

    async def expand(self, spec: str, domain: str, *, explanation: bool = False) -> str:
        out: list[str] = []
        pos = 0
        for macro in _MACRO.finditer(spec):
            out.append(spec[pos : macro.start()])
            pos = macro.end()
            if macro.group(5):
                out.append("%")
            elif macro.group(6):
                out.append(" ")
            elif macro.group(7):
                out.append("%20")
            else:
                letter = macro.group(1)
                value = await self._macro_value(letter.lower(), domain, explanation)
                value = _transform(value, macro.group(2), macro.group(3), macro.group(4))
                if letter.isupper():
                    value = urllib.parse.quote(value, safe="")
                out.append(value)
        out.append(spec[pos:])
        text = "".join(out)
        if explanation:
            return text
        return _truncate(text)

    async def _macro_value(self, letter: str, domain: str, explanation: bool) -> str:
        if letter in "crt" and not explanation:
            raise _Abort("permerror", f"macro %{{{letter}}} outside exp")
        match letter:
            case "s":
                return self.sender
            case "l":
                return self.local
            case "o":
                return self.sender_domain
            case "d":
                return domain
            case "i":
                if isinstance(self.ip, ipaddress.IPv6Address):
                    return ".".join(self.ip.exploded.replace(":", ""))
                return str(self.ip)
            case "p":
                return await self._p_macro(domain)
            case "v":
                return "in-addr" if self.ip.version == 4 else "ip6"
            case "h":
                return self.helo
            case "c":
                return str(self.ip)
            case "r":
                return self.receiver
            case _:  # "t"
                return str(int(self.now))

    async def _p_macro(self, domain: str) -> str:
        names = await self.validated_names()
        target = domain.lower().rstrip(".")
        for name in names:
            if name == target:
                return name
        for name in names:
            if name.endswith("." + target):
                return name
        return names[0] if names else "unknown"

    # -- check_host()

    async def check_host(self, domain: str, *, top: bool) -> tuple[str, str, str]:
        """(result, matched mechanism, explanation) for ``domain``."""
        if not _valid_domain(domain):
            return "none", "", ""
        record = await self.spf_record(domain)
        if record is None:
            return "none", "", ""
        for mechanism in record.mechanisms:
            if await self.matches(mechanism, domain):
                explanation = ""
                if mechanism.result == "fail" and top and record.exp:
                    explanation = await self.explain(record.exp, domain)
                return mechanism.result, mechanism.text, explanation
        if record.redirect is not None and not any(
            m.name == "all" for m in record.mechanisms
        ):
            self.count_lookup()
            target = await self.expand(record.redirect, domain)
            result, matched, explanation = await self.check_host(target, top=top)
            if result == "none":
                raise _Abort("permerror", f"redirect to {target}, which has no SPF record")
            return result, matched, explanation
        return "neutral", "default", ""

    async def matches(self, mechanism: Mechanism, domain: str) -> bool:
        name = mechanism.name
        if name == "all":
            return True
        if mechanism.network is not None:
            return self.ip in mechanism.network
        if name in _NEEDS_DNS:
            self.count_lookup()
        target = (await self.expand(mechanism.spec, domain)) if mechanism.spec else domain
        if name == "include":
            result, _, _ = await self.check_host(target, top=False)
            if result in ("temperror", "permerror"):
                raise _Abort(result, f"include:{target} gave {result}")
            if result == "none":
                raise _Abort("permerror", f"include:{target} has no SPF record")
            return result == "pass"
        if name == "a":
            return self._in_any(await self.addresses(target), mechanism)
        if name == "mx":
            return await self._match_mx(target, mechanism)
        if name == "ptr":
            wanted = target.lower().rstrip(".")
            return any(
                n == wanted or n.endswith("." + wanted) for n in await self.validated_names()
            )
        # exists: any A record at all
        return bool(await self.addresses(target, family=4))

    async def _match_mx(self, target: str, mechanism: Mechanism) -> bool:
        try:
            answer = await self.resolver.resolve_mx(target)
        except DnsError as exc:
            if exc.temporary:
                raise _Abort("temperror", str(exc)) from exc
            self.count_void()
            return False
        if answer.implicit:  # RFC 7208 5.4: no implicit MX for SPF
            self.count_void()
            return False
        if len(answer.hosts) > MAX_MX_HOSTS:
            raise _Abort("permerror", f"{target} has more than {MAX_MX_HOSTS} MX hosts")
        for host in answer.hosts:
            if self._in_any(await self.addresses(host.host, void=False), mechanism):
                return True
        return False

    def _in_any(self, addresses: list[_IP], mechanism: Mechanism) -> bool:
        bits = mechanism.cidr4 if self.ip.version == 4 else mechanism.cidr6
        for address in addresses:
            if address.version != self.ip.version:
                continue
            if self.ip in ipaddress.ip_network(f"{address}/{bits}", strict=False):
                return True
        return False

    async def explain(self, exp: str, domain: str) -> str:
        """The exp= text (RFC 7208 6.2); any problem just means no explanation."""
        try:
            target = await self.expand(exp, domain)
            texts = await self.resolver.resolve_txt(target)
            if len(texts) != 1 or not texts[0].isascii():
                return ""
            _check_macros(texts[0], _EXP_LETTERS, "exp", spaces=True)
            return await self.expand(texts[0], domain, explanation=True)
        except (DnsError, SpfSyntaxError, _Abort):
            return ""


def _transform(value: str, digits: str, reverse: str, delimiters: str) -> str:
    parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
    if reverse:
        parts.reverse()
    if digits:
        parts = parts[-int(digits) :]
    return ".".join(parts)


def _truncate(name: str) -> str:
    """Drop labels on the left until the name fits in 253 characters (RFC 7208 7.3)."""
    while len(name.rstrip(".")) > 253 and "." in name:
        name = name.split(".", 1)[1]
    return name


# -- the API ------------------------------------------------------------------------------


async def check_spf(
    ip: str,
    sender: str,
    helo: str,
    resolver: TxtResolver,
    *,
    receiver: str = "unknown",
    now: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> SpfResult:
    """Check the MAIL FROM identity; a null sender is checked as ``postmaster@<helo>``.

    ``receiver`` is our host name for the ``%{r}`` macro of explanations; ``now`` the time for
    ``%{t}``. Never raises for DNS or record problems: they are results.
    """
    identity = "mailfrom"
    if not sender:
        sender, identity = f"postmaster@{helo}", "helo"
    elif "@" not in sender:
        sender = f"postmaster@{sender}"
    elif sender.startswith("@"):
        sender = "postmaster" + sender
    return await _run(ip, sender, helo, resolver, identity, receiver, now, timeout)


async def expand_macros(
    spec: str,
    *,
    ip: str,
    sender: str,
    domain: str,
    resolver: TxtResolver,
    helo: str = "",
    explanation: bool = False,
    receiver: str = "unknown",
    now: float = 0.0,
) -> str:
    """Expand the macros of a domain-spec (or of an explanation) as check_host() would;
    raises SpfSyntaxError for a malformed macro-string. For tests and diagnostics."""
    _check_macros(spec, _EXP_LETTERS if explanation else _DOMAIN_LETTERS, spec,
                  spaces=explanation)
    run = _Evaluation(_client_ip(ip), sender, helo, resolver, receiver, now)
    try:
        return await run.expand(spec, domain, explanation=explanation)
    except _Abort as exc:
        raise SpfSyntaxError(exc.reason) from exc


def helo_is_domain(helo: str) -> bool:
    """Can the HELO identity be checked (RFC 7208 2.3)? Only a fully qualified domain name
    can: not an address literal (``[192.0.2.1]``, ``[IPv6:...]``), not a bare IP address,
    not a single label like ``localhost``."""
    name = helo.strip()
    if not name or name.startswith("["):
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return _valid_domain(name)
    return False


async def check_helo(
    ip: str,
    helo: str,
    resolver: TxtResolver,
    *,
    receiver: str = "unknown",
    now: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> SpfResult:
    """Check the HELO identity alone (RFC 7208 2.3); an address literal gives "none"."""
    return await _run(ip, f"postmaster@{helo}", helo, resolver, "helo", receiver, now, timeout)


async def _run(
    ip: str,
    sender: str,
    helo: str,
    resolver: TxtResolver,
    identity: str,
    receiver: str,
    now: float | None,
    timeout: float,
) -> SpfResult:
    domain = sender.rpartition("@")[2].lower().rstrip(".")
    try:
        client = _client_ip(ip)
    except ValueError:
        return SpfResult("permerror", domain, identity=identity, sender=sender,
                         reason=f"bad client address {ip!r}")
    run = _Evaluation(client, sender, helo, resolver, receiver,
                      time.time() if now is None else now)
    try:
        async with asyncio.timeout(timeout):
            result, mechanism, explanation = await run.check_host(domain, top=True)
    except _Abort as stop:
        return SpfResult(stop.result, domain, identity=identity, sender=sender,
                         reason=stop.reason, lookups=run.lookups)
    except TimeoutError:
        return SpfResult("temperror", domain, identity=identity, sender=sender,
                         reason=f"no answer within {timeout:g} s", lookups=run.lookups)
    reason = "no SPF record" if result == "none" else ""
    return SpfResult(result, domain, mechanism, explanation, identity, sender, reason,
                     run.lookups)
