"""``hayate suppression``: the suppression list by hand (add, remove, list, check).

Entries belong to a sending domain, or to ``*`` (every sending domain, the default of
``add``). A running server sees a change within its cache time (30 s).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import click

from hayate.commands.common import config_option, load_cfg, store_call
from hayate.store.base import ANY_DOMAIN, Suppression

DOMAIN_HELP = 'Sending domain the entry is for; "*" means every sending domain.'


@click.group()
def suppression() -> None:
    """Recipients that mail is not sent to (per sending domain)."""


@suppression.command("add")
@click.argument("addresses", nargs=-1, required=True)
@click.option("--domain", default=ANY_DOMAIN, show_default=True, help=DOMAIN_HELP)
@click.option("--reason", default="", help="Why (shown by 'list').")
@config_option
def add(addresses: tuple[str, ...], domain: str, reason: str, config_path: str) -> None:
    """Suppress ADDRESS... for mail from --domain."""
    cfg = load_cfg(config_path)

    async def op(store: Any) -> list[bool]:
        return [await store.add_suppression(domain, a, reason, "manual") for a in addresses]

    for address, new in zip(addresses, store_call(cfg, op), strict=True):
        state = "suppressed" if new else "already suppressed"
        click.echo(f"{state}: {address.strip().lower()} for {domain.lower()}")


@suppression.command("remove")
@click.argument("addresses", nargs=-1, required=True)
@click.option("--domain", default=None, help="Only this domain's entry (default: every entry).")
@config_option
def remove(addresses: tuple[str, ...], domain: str | None, config_path: str) -> None:
    """Take ADDRESS... off the list (also resets its soft-bounce count)."""
    cfg = load_cfg(config_path)

    async def op(store: Any) -> list[int]:
        return [await store.remove_suppression(a, domain) for a in addresses]

    missing = 0
    for address, count in zip(addresses, store_call(cfg, op), strict=True):
        if count:
            entries = "1 entry" if count == 1 else f"{count} entries"
            click.echo(f"removed: {address.strip().lower()} ({entries})")
        else:
            missing += 1
            click.echo(f"not suppressed: {address.strip().lower()}", err=True)
    if missing:
        sys.exit(1)


@suppression.command("list")
@click.option("--domain", default=None, help="Only this domain's entries (\"*\" for global).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
def list_(domain: str | None, as_json: bool, config_path: str) -> None:
    """List entries: domain, address, source, when, reason."""
    cfg = load_cfg(config_path)
    entries: list[Suppression] = store_call(cfg, lambda s: s.list_suppressions(domain))
    for e in entries:
        if as_json:
            click.echo(json.dumps(_as_dict(e), ensure_ascii=False))
        else:
            click.echo(f"{e.domain}\t{e.address}\t{e.source}\t{_iso(e.created)}\t{e.reason}")


@suppression.command("check")
@click.argument("address")
@click.option("--domain", required=True, help="The sending domain to check for.")
@config_option
def check(address: str, domain: str, config_path: str) -> None:
    """Is ADDRESS suppressed for mail from --domain? Exit status 0 if so, 1 if not."""
    cfg = load_cfg(config_path)
    domain = domain.strip().lower().rstrip(".")  # as the store keeps it

    async def op(store: Any) -> list[Suppression]:
        found = await store.check_suppressions(domain, [address])
        if not found:
            return []
        entries: list[Suppression] = await store.list_suppressions(address=address)
        return [e for e in entries if e.domain in (domain, ANY_DOMAIN)]

    entries = store_call(cfg, op)
    if not entries:
        click.echo(f"not suppressed: {address.strip().lower()} for {domain}")
        sys.exit(1)
    for e in entries:
        click.echo(f"suppressed: {e.address} for {e.domain} ({e.source}, {_iso(e.created)}"
                   f"{', ' + e.reason if e.reason else ''})")


def _as_dict(e: Suppression) -> dict[str, Any]:
    return {"domain": e.domain, "address": e.address, "source": e.source, "reason": e.reason,
            "created": _iso(e.created), "detail": e.detail}


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


COMMANDS = [suppression]
