"""How the store spells addresses, alias sources, mailbox names and flags before keeping them.

Addresses are stripped of surrounding white space and lower-cased as a whole (the local part
is treated case-insensitively, like most providers). Anything but exactly one ``@`` with
text on both sides, or white space / control characters inside, raises InvalidAddress.
"""

from __future__ import annotations

from hayate.store.base import INBOX, InvalidAddress


def _check_chars(value: str, original: str) -> None:
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidAddress(f"address {original!r} contains white space or control characters")


def normalize_address(address: str) -> str:
    """``' Bob@Example.COM '`` → ``'bob@example.com'``; raises InvalidAddress."""
    value = address.strip().lower()
    if value.count("@") != 1:
        raise InvalidAddress(f"address {address!r} must contain exactly one '@'")
    local, domain = value.split("@")
    if not local or not domain:
        raise InvalidAddress(f"address {address!r} needs a local part and a domain")
    _check_chars(value, address)
    return value


def normalize_alias_source(source: str) -> str:
    """An address, or a catch-all ``@domain``; raises InvalidAddress."""
    value = source.strip().lower()
    if value.startswith("@") and value.count("@") == 1 and len(value) > 1:
        _check_chars(value, source)
        return value
    return normalize_address(source)


def normalize_domain(domain: str) -> str:
    value = domain.strip().lower().rstrip(".")
    if not value or "@" in value:
        raise InvalidAddress(f"not a domain: {domain!r}")
    return value


def domain_of(address: str) -> str:
    """The domain of an already normalized address."""
    return address.rpartition("@")[2]


def catch_all_of(address: str) -> str:
    """The catch-all alias source that covers a normalized address."""
    return "@" + domain_of(address)


def normalize_mailbox(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501 5.1); other names are kept as given."""
    if not name or name != name.strip():
        raise ValueError(f"bad mailbox name {name!r}")
    return INBOX if name.upper() == INBOX else name


def join_flags(flags: tuple[str, ...]) -> str:
    """Flags as stored: space separated, duplicates dropped, order kept."""
    seen: dict[str, None] = {}
    for flag in flags:
        if not flag or any(ch.isspace() for ch in flag):
            raise ValueError(f"bad flag {flag!r}")
        seen.setdefault(flag)
    return " ".join(seen)


def split_flags(stored: str) -> tuple[str, ...]:
    return tuple(stored.split())
