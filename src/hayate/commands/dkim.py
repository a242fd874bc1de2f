"""``hayate dkim``: make DKIM keys, show the DNS records to publish, rotate and retire keys.

    hayate dkim keygen example.com [--algo rsa|ed25519] [--selector S] [--bits 2048]
    hayate dkim list [example.com]
    hayate dkim show example.com SELECTOR
    hayate dkim activate example.com SELECTOR
    hayate dkim retire example.com SELECTOR

Rotation: ``keygen`` a new key (the old active key of the same algorithm keeps its record
in DNS as "published"), wait until mail signed with the old key has been delivered (a few
days), then ``retire`` the old selector and remove its record. ``keygen --publish-only``
makes a key that does not sign yet: publish its record, then ``activate`` it.

The server reads keys when it starts: restart it after changing keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import click

from hayate.auth.dkim_keys import DkimKey, DkimKeyError, DkimKeyStore, dns_record
from hayate.commands.common import CliError, cli_errors, config_option, load_cfg
from hayate.dnscheck.results import Record

_STATE_NOTE = {
    "active": "signing; keep in DNS",
    "published": "not signing; keep in DNS",
    "retired": "unused; the DNS record may be removed",
}


def _store(config_path: str) -> DkimKeyStore:
    return DkimKeyStore(load_cfg(config_path).dkim_dir)


@contextmanager
def _key_errors() -> Iterator[None]:
    """Key-store and OS errors become one readable line."""
    with cli_errors():
        try:
            yield
        except DkimKeyError as exc:
            raise CliError(str(exc)) from exc


def _describe(key: DkimKey) -> str:
    size = f"-{key.bits}" if key.algorithm == "rsa" else ""
    return f"{key.algorithm}{size}"


def _print_record(key: DkimKey) -> None:
    name, value = dns_record(key)
    click.echo(f"name:  {name}")
    click.echo("type:  TXT")
    click.echo(f"value: {value}")
    click.echo("zone file line:")
    click.echo(Record(name, "TXT", value).zone_line())


@click.group()
def dkim() -> None:
    """DKIM keys for the sending domains and their DNS records."""


@dkim.command("keygen")
@click.argument("domain")
@click.option("--algo", type=click.Choice(["rsa", "ed25519"]), default="rsa", show_default=True)
@click.option("--selector", default=None, help="Default: dated, e.g. hy202611r.")
@click.option("--bits", type=int, default=2048, show_default=True, help="RSA key size.")
@click.option("--publish-only", is_flag=True,
              help="Do not sign with it yet (publish the record, then 'activate').")
@config_option
def keygen(
    domain: str, algo: str, selector: str | None, bits: int, publish_only: bool, config_path: str
) -> None:
    """Make a key for DOMAIN and print the TXT record to publish."""
    store = _store(config_path)
    with _key_errors():
        before = {k.selector for k in store.keys(domain) if k.state == "active"}
        key = store.generate(domain, algo, selector, bits, activate=not publish_only)
    click.echo(f"created {_describe(key)} key {key.selector} for {key.domain} ({key.state})")
    demoted = sorted(before - {k.selector for k in store.signing_keys(key.domain)})
    for old in demoted:
        click.echo(f"{old} no longer signs; keep its record in DNS until its mail is delivered, "
                   f"then 'hayate dkim retire {key.domain} {old}'")
    click.echo("publish this DNS record:")
    _print_record(key)


@dkim.command("list")
@click.argument("domain", required=False)
@config_option
def list_keys(domain: str | None, config_path: str) -> None:
    """Keys of DOMAIN (or of every domain): selector, algorithm, state, created, record."""
    store = _store(config_path)
    with _key_errors():
        domains = [domain] if domain else store.domains()
        rows = [k for d in domains for k in store.keys(d)]
    if domain and not rows:
        raise CliError(f"no DKIM keys for domain {domain}")
    if not rows:
        click.echo("no DKIM keys (make one with 'hayate dkim keygen DOMAIN')")
        return
    click.echo(f"{'DOMAIN':<24} {'SELECTOR':<14} {'ALGO':<9} {'STATE':<10} {'CREATED':<11} RECORD")
    for k in rows:
        created = time.strftime("%Y-%m-%d", time.gmtime(k.created))
        click.echo(
            f"{k.domain:<24} {k.selector:<14} {_describe(k):<9} {k.state:<10} {created:<11} "
            f"{k.record_name}  ({_STATE_NOTE[k.state]})"
        )


@dkim.command("show")
@click.argument("domain")
@click.argument("selector")
@config_option
def show(domain: str, selector: str, config_path: str) -> None:
    """Print the TXT record of one key again."""
    store = _store(config_path)
    with _key_errors():
        key = store.get(domain, selector)
    click.echo(f"{_describe(key)} key {key.selector} for {key.domain} ({key.state})")
    _print_record(key)


def _change_state(store: DkimKeyStore, domain: str, selector: str, state: str) -> DkimKey:
    with _key_errors():
        return store.set_state(domain, selector, state)


@dkim.command("activate")
@click.argument("domain")
@click.argument("selector")
@config_option
def activate(domain: str, selector: str, config_path: str) -> None:
    """Sign with this key (other keys of its algorithm stay published)."""
    key = _change_state(_store(config_path), domain, selector, "active")
    click.echo(f"{key.selector} of {key.domain} now signs (restart the server to apply)")


@dkim.command("retire")
@click.argument("domain")
@click.argument("selector")
@config_option
def retire(domain: str, selector: str, config_path: str) -> None:
    """Stop using a key; its DNS record may then be removed."""
    store = _store(config_path)
    key = _change_state(store, domain, selector, "retired")
    click.echo(f"retired {key.selector} of {key.domain}; remove {key.record_name} from DNS "
               "(restart the server to apply)")
    if not store.signing_keys(key.domain):
        click.echo(f"warning: {key.domain} has no active key left; its mail is not signed")


COMMANDS = [dkim]
