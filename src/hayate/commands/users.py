"""``hayate user``: mail accounts of the local domains — add, list, show, passwd, quota,
disable, enable, del.

Sizes (``--quota``, ``quota ADDRESS SIZE``) are bytes or a number with a binary unit: ``500M``,
``2G``, ``1024K``, ``1.5G``, also written ``500MB`` or ``500MiB`` (all mean powers of 1024);
``0`` or ``none`` means no quota. Passwords are read from standard input (the first line), or
asked twice on a terminal. Changes reach a running server at once (the RCPT-time quota check
and logins read the store).
"""

from __future__ import annotations

import datetime as dt
import getpass
import re
import sys
from typing import Any

import click

from hayate.commands.common import CliError, config_option, load_cfg, store_call
from hayate.config import Config
from hayate.store.base import Account

MAX_SIZE = 1024**5  # 1 PiB: anything above is a typing mistake
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?")
_NO_QUOTA = ("0", "NONE", "UNLIMITED")


def parse_size(text: str) -> int:
    """Bytes for ``text`` (see module doc); ValueError with a readable reason."""
    value = text.strip().upper()
    if value in _NO_QUOTA:
        return 0
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ValueError(f"{text!r} is not a size (examples: 500M, 2G, 1024K, 1048576, none)")
    number, unit = match.groups()
    if "." in number and not unit:
        raise ValueError(f"{text!r}: a number of bytes must be whole")
    size = int(float(number) * _UNITS[unit]) if "." in number else int(number) * _UNITS[unit]
    if size > MAX_SIZE:
        raise ValueError(f"{text!r} is larger than 1P")
    return size


def format_size(size: int) -> str:
    """``1536`` → ``1.5K``, ``524288000`` → ``500M``, ``512`` → ``512B``."""
    for unit in ("T", "G", "M", "K"):
        factor = _UNITS[unit]
        if size >= factor:
            text = f"{size / factor:.1f}"
            return (text[:-2] if text.endswith(".0") else text) + unit
    return f"{size}B"


def usage(account: Account) -> str:
    """``1.2M of 500M (0.2%)`` or ``1.2M (no quota)``."""
    used = format_size(account.used_bytes)
    if not account.quota_bytes:
        return f"{used} (no quota)"
    percent = 100.0 * account.used_bytes / account.quota_bytes
    return f"{used} of {format_size(account.quota_bytes)} ({percent:.1f}%)"


def size_callback(ctx: click.Context, param: click.Parameter, value: str | int) -> int:
    """Click callback: a SIZE option or argument as bytes (BadParameter with the reason)."""
    if isinstance(value, int):
        return value
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def read_password(confirm: bool = True) -> str:
    """A new password: asked (twice) on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Again: ") != password:
            raise CliError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("empty password (give it on standard input)")
    return password


def check_local(cfg: Config, address: str) -> str:
    address = address.strip().lower()
    if address.count("@") != 1 or address.startswith("@") or address.endswith("@"):
        raise CliError(f"not an address: {address!r}")
    domain = address.split("@", 1)[1]
    if domain not in cfg.local_domains:
        raise CliError(f"{domain} is not in local_domains ({', '.join(cfg.local_domains)})")
    return address


def _account(cfg: Config, address: str) -> Account:
    account: Account | None = store_call(cfg, lambda s: s.get_account(address))
    if account is None:
        raise CliError(f"no such account: {address}")
    return account


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@click.group()
def user() -> None:
    """Mail accounts of the local domains."""


@user.command("add")
@click.argument("address")
@click.option("--quota", default="none", metavar="SIZE", callback=size_callback,
              help="Storage quota: 500M, 2G, 1024K, bytes; 0 or none = no quota.")
@config_option
def add(address: str, quota: int, config_path: str) -> None:
    """Create ADDRESS; the password is read from standard input."""
    cfg = load_cfg(config_path)
    address = check_local(cfg, address)
    password = read_password()
    store_call(cfg, lambda s: s.add_account(address, password, quota))
    click.echo(f"added {address}" + (f" (quota {format_size(quota)})" if quota else ""))


@user.command("list")
@config_option
def list_(config_path: str) -> None:
    """List accounts with their storage use and quota."""
    accounts: list[Account] = store_call(load_cfg(config_path), lambda s: s.list_accounts())
    if not accounts:
        click.echo("no accounts")
        return
    width = max(len("ADDRESS"), *(len(a.address) for a in accounts))
    click.echo(f"{'ADDRESS':<{width}}  {'USED':>7}  {'QUOTA':>7}  {'USE%':>6}  STATE")
    for a in accounts:
        quota = format_size(a.quota_bytes) if a.quota_bytes else "none"
        percent = f"{100.0 * a.used_bytes / a.quota_bytes:.1f}%" if a.quota_bytes else "-"
        state = "disabled" if a.disabled else "enabled"
        click.echo(f"{a.address:<{width}}  {format_size(a.used_bytes):>7}  {quota:>7}  "
                   f"{percent:>6}  {state}")


@user.command("show")
@click.argument("address")
@config_option
def show(address: str, config_path: str) -> None:
    """Show an account: created, state, storage use, folders with message counts."""
    cfg = load_cfg(config_path)
    address = address.strip().lower()

    async def op(store: Any) -> tuple[Account, list[tuple[str, str | None, int]]] | None:
        account = await store.get_account(address)
        if account is None:
            return None
        folders = []
        for box in await store.list_mailboxes(address):
            folders.append((box.name, box.special_use,
                            await store.count_messages(address, box.name)))
        return account, folders

    found = store_call(cfg, op)
    if found is None:
        raise CliError(f"no such account: {address}")
    account, folders = found
    click.echo(f"address:  {account.address}")
    click.echo(f"created:  {_when(account.created)}")
    click.echo("state:    " + ("disabled (receives mail, cannot log in)" if account.disabled
                               else "enabled"))
    click.echo(f"storage:  {usage(account)}")
    click.echo("folders:")
    width = max((len(name) for name, _, _ in folders), default=0)
    for name, special_use, count in folders:
        noun = "message" if count == 1 else "messages"
        extra = f"  {special_use}" if special_use else ""
        click.echo(f"  {name:<{width}}  {count:>6} {noun}{extra}")


@user.command("passwd")
@click.argument("address")
@config_option
def passwd(address: str, config_path: str) -> None:
    """Set the password of ADDRESS (read from standard input, or asked twice)."""
    cfg = load_cfg(config_path)
    address = address.strip().lower()
    _account(cfg, address)
    password = read_password()
    if not store_call(cfg, lambda s: s.set_password(address, password)):
        raise CliError(f"no such account: {address}")
    click.echo(f"password of {address} changed")


@user.command("quota")
@click.argument("address")
@click.argument("size", callback=size_callback)
@config_option
def quota(address: str, size: int, config_path: str) -> None:
    """Set the storage quota of ADDRESS: SIZE like 500M, 2G, 1024K, bytes; 0 or none = none."""
    cfg = load_cfg(config_path)
    address = address.strip().lower()
    if not store_call(cfg, lambda s: s.set_quota(address, size)):
        raise CliError(f"no such account: {address}")
    account = _account(cfg, address)
    click.echo(f"quota of {address}: {format_size(size) if size else 'none'}; "
               f"used {usage(account)}")
    if size and account.used_bytes >= size:
        click.echo("the mailbox is full: new mail is deferred (452 4.2.2) until there is room",
                   err=True)


def _set_disabled(address: str, config_path: str, disabled: bool) -> None:
    address = address.strip().lower()
    if not store_call(load_cfg(config_path), lambda s: s.set_disabled(address, disabled)):
        raise CliError(f"no such account: {address}")
    click.echo(f"{address}: {'disabled' if disabled else 'enabled'}")


@user.command("disable")
@click.argument("address")
@config_option
def disable(address: str, config_path: str) -> None:
    """Refuse logins of ADDRESS (IMAP, POP3, SMTP AUTH); its mail is still delivered."""
    _set_disabled(address, config_path, True)


@user.command("enable")
@click.argument("address")
@config_option
def enable(address: str, config_path: str) -> None:
    """Allow logins of ADDRESS again."""
    _set_disabled(address, config_path, False)


@user.command("del")
@click.argument("address")
@config_option
def delete(address: str, config_path: str) -> None:
    """Delete an account and its mail."""
    address = address.strip().lower()
    if not store_call(load_cfg(config_path), lambda s: s.delete_account(address)):
        raise CliError(f"no such account: {address}")
    click.echo(f"deleted {address}")


COMMANDS = [user]
