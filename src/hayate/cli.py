"""The ``hayate`` command line: init, serve, users, aliases, the queue and ``send``.

Every command that needs a config takes ``-c FILE`` (default: ``$HAYATE_CONFIG`` or
``var/hayate.toml``). Errors are printed as one readable line (exit status 1), never as a
traceback: a bad config file names the key that is wrong.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from hayate import __version__
from hayate.commands import bounces as bounces_commands
from hayate.commands import dkim as dkim_commands
from hayate.commands import dnscheck as dnscheck_commands
from hayate.commands import events as events_commands
from hayate.commands import suppression as suppression_commands
from hayate.commands import users as users_commands
from hayate.commands.common import (
    CliError,
    cli_errors,
    config_option,
    load_cfg,
    run_async,
    store_call,
    with_store,
)
from hayate.commands.sites import sites as sites_command
from hayate.config import Config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hayate")
def main() -> None:
    """Hayate: SMTP server, durable queue, delivery by MX, mailboxes over IMAP and POP3."""


# --- init / serve ------------------------------------------------------------------------

CONFIG_TEMPLATE = """\
# Hayate configuration (written by 'hayate init'). Every key is documented in README.md.
# Relative paths are relative to the folder that holds this file.
hostname = "{hostname}"
data_dir = "."
local_domains = ["{domain}"]
relay_networks = []          # client networks allowed to relay without AUTH, e.g. ["127.0.0.0/8"]

[listen]
smtp = "127.0.0.1:2525"        # MX: mail for local domains
submission = "127.0.0.1:2587"  # STARTTLS, then AUTH
submissions = "127.0.0.1:2465" # implicit TLS, then AUTH
http = "127.0.0.1:8025"        # /health, /metrics, mail client autoconfig
https = "127.0.0.1:8443"       # the same over TLS (password changes need it)
imap = "127.0.0.1:2143"        # IMAP, STARTTLS before LOGIN
imaps = "127.0.0.1:2993"       # IMAP over implicit TLS
pop3 = "127.0.0.1:2110"        # POP3, STLS before USER/PASS
pop3s = "127.0.0.1:2995"       # POP3 over implicit TLS

[tls]
cert = "tls/cert.pem"
key = "tls/key.pem"

[policy]
require_tls_for_auth = true

# [dns]
# nameservers = ["127.0.0.1:5353"]

# [[transport]]
# domain = "example.net"
# nexthop = "127.0.0.1:2526"
"""


@main.command()
@click.option("--dir", "directory", default="var", show_default=True, type=click.Path(),
              help="Folder for the config, store, spool, keys and certificates.")
@click.option("--hostname", default="localhost", show_default=True,
              help="The server's name (EHLO, Received, DSNs).")
@click.option("--domain", default="example.test", show_default=True,
              help="First local domain; the demo account lives in it.")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
def init(directory: str, hostname: str, domain: str, force: bool) -> None:
    """Write a working config, a self-signed certificate and a demo account."""
    from hayate.tls import generate_self_signed

    base = Path(directory)
    config_file = base / "hayate.toml"
    if config_file.exists() and not force:
        raise CliError(f"{config_file} exists already (use --force to overwrite it)")
    with cli_errors():
        base.mkdir(parents=True, exist_ok=True)
        for sub in ("tls", "dkim", "spool", "run"):
            (base / sub).mkdir(exist_ok=True)
        os.chmod(base / "dkim", 0o700)
        config_file.write_text(CONFIG_TEMPLATE.format(hostname=hostname, domain=domain.lower()))
        names = sorted({"localhost", hostname})
        generate_self_signed(base / "tls" / "cert.pem", base / "tls" / "key.pem", names)
    cfg = load_cfg(str(config_file))
    demo = f"demo@{domain.lower()}"
    password = secrets.token_urlsafe(12)

    async def add(store: Any) -> None:
        if await store.get_account(demo) is None:
            await store.add_account(demo, password)
        else:
            await store.set_password(demo, password)

    store_call(cfg, add)
    click.echo(f"wrote {config_file}")
    click.echo(f"certificate for {', '.join(names)} in {base / 'tls'}")
    click.echo(f"demo account: {demo}  password: {password}")


@main.command()
@config_option
def serve(config_path: str) -> None:
    """Run the server (SMTP, IMAP and POP3 listeners, queue, delivery) until SIGTERM."""
    from hayate.serve import serve as run_server

    cfg = load_cfg(config_path)

    def announce(addresses: dict[str, str]) -> None:
        click.echo(f"hayate {__version__} on {cfg.hostname}: {cfg.worker_count} worker(s)")
        for name, address in addresses.items():
            click.echo(f"  {name:<12} {address}")
        smtp = addresses.get("smtp")
        domain = cfg.local_domains[0] if cfg.local_domains else "example.test"
        if smtp:
            host, port = smtp.rsplit(":", 1)
            click.echo("send a test message with:")
            click.echo(f"  swaks --server {host}:{port} --from you@example.org "
                       f"--to demo@{domain}")
        click.echo(f"  or: printf 'Subject: hello\\n\\nhi\\n' | hayate send -c {config_path} "
                   f"--from you@example.org demo@{domain}")
        sys.stdout.flush()

    with cli_errors():
        code = run_server(cfg, announce)
    sys.exit(code)


# --- aliases (accounts: hayate.commands.users) -------------------------------------------


def _delete_named(config_path: str, what: str, name: str,
                  op: Callable[[Any], Awaitable[bool]]) -> None:
    """Run a store deletion; "no such <what>" when there was nothing to delete."""
    if not store_call(load_cfg(config_path), op):
        raise CliError(f"no such {what}: {name}")
    click.echo(f"deleted {name}")


@main.group()
def alias() -> None:
    """Aliases: an address (or a catch-all @domain) that forwards to others."""


@alias.command("add")
@click.argument("source")
@click.argument("targets", nargs=-1, required=True)
@config_option
def alias_add(source: str, targets: tuple[str, ...], config_path: str) -> None:
    """Make SOURCE deliver to TARGETS (local accounts or remote addresses)."""
    cfg = load_cfg(config_path)
    source = source.strip().lower()
    domain = source.split("@", 1)[-1]
    if "@" not in source or domain not in cfg.local_domains:
        raise CliError(f"{source}: the alias must be in a local domain "
                       f"({', '.join(cfg.local_domains)})")
    store_call(cfg, lambda s: s.add_alias(source, list(targets)))
    click.echo(f"{source} -> {', '.join(targets)}")


@alias.command("del")
@click.argument("source")
@config_option
def alias_del(source: str, config_path: str) -> None:
    """Delete an alias."""
    _delete_named(config_path, "alias", source, lambda s: s.delete_alias(source.lower()))


@alias.command("list")
@config_option
def alias_list(config_path: str) -> None:
    """List aliases."""
    cfg = load_cfg(config_path)
    aliases = store_call(cfg, lambda s: s.list_aliases())
    for a in aliases:
        click.echo(f"{a.source}\t{', '.join(a.targets)}")


# --- the queue ---------------------------------------------------------------------------


def _find(cfg: Config, queue_id: str) -> Any:
    from hayate.store.spool import open_all

    for spool in open_all(cfg.spool_dir):
        if spool.message(queue_id) is not None:
            return spool
        spool.close()
    raise CliError(f"{queue_id}: no such message in the queue")


@main.group()
def queue() -> None:
    """Inspect and act on queued mail (works while the server runs)."""


@queue.command("list")
@click.option("--limit", default=1000, show_default=True, help="At most this many messages.")
@config_option
def queue_list(limit: int, config_path: str) -> None:
    """List queued messages, like Postfix's mailq."""
    from hayate.store.spool import open_all

    cfg = load_cfg(config_path)
    total = 0
    for spool in open_all(cfg.spool_dir):
        for info, rcpts in spool.list_messages(limit):
            total += 1
            when = time.strftime("%a %b %d %H:%M:%S", time.localtime(info.arrival))
            flag = "!" if info.held else " "
            click.echo(f"{info.id}{flag} {info.size:>8} {when}  <{info.sender}>")
            if info.held:
                click.echo(f"    (held: {info.hold_reason or 'by operator'})")
            for r in rcpts:
                if r.last_reply:
                    click.echo(f"    ({r.last_reply})")
                click.echo(f"        {r.address}")
        spool.close()
    click.echo(f"-- {total} message(s) in the queue" if total else "Mail queue is empty")


@queue.command("show")
@click.argument("queue_id")
@config_option
def queue_show(queue_id: str, config_path: str) -> None:
    """Show one message: envelope, recipients' state, then the message itself."""
    cfg = load_cfg(config_path)
    spool = _find(cfg, queue_id)
    info = spool.message(queue_id)
    click.echo(f"queue id:  {info.id}")
    click.echo(f"sender:    <{info.sender}>")
    click.echo(f"arrival:   {time.strftime('%Y-%m-%d %H:%M:%S %z', time.localtime(info.arrival))}")
    click.echo(f"size:      {info.size}")
    click.echo(f"origin:    {info.origin}")
    click.echo(f"held:      {'yes: ' + (info.hold_reason or 'by operator') if info.held else 'no'}")
    for r in spool.recipients_of(queue_id):
        nxt = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.next_attempt))
        click.echo(f"recipient: <{r.address}> via {r.destination}, attempts={r.attempts}, "
                   f"next={nxt}" + (f", last: {r.last_reply}" if r.last_reply else ""))
    click.echo("")
    data = spool.message_data(queue_id) or b""
    click.echo(data.decode("utf-8", "replace"), nl=False)
    spool.close()


QueueAction = Callable[[Any, str], str]


def _retry(spool: Any, qid: str) -> str:
    return f"{qid}: {spool.retry_now(qid)} recipient(s) due now"


def _hold(spool: Any, qid: str) -> str:
    spool.set_held(qid, True, "by operator")
    return f"{qid}: held"


def _release(spool: Any, qid: str) -> str:
    spool.set_held(qid, False)
    return f"{qid}: released"


def _delete(spool: Any, qid: str) -> str:
    spool.delete(qid)
    return f"{qid}: deleted"


QUEUE_ACTIONS: dict[str, tuple[str, QueueAction]] = {
    "retry": ("Try a deferred message again now.", _retry),
    "hold": ("Keep a message but stop delivering it until released.", _hold),
    "release": ("Release a held message (it is tried again at once).", _release),
    "delete": ("Delete a message from the queue without delivering it (no DSN).", _delete),
}


def _register_queue_action(name: str, help_text: str, action: QueueAction) -> None:
    @queue.command(name, help=help_text)
    @click.argument("queue_id")
    @config_option
    def command(queue_id: str, config_path: str) -> None:
        spool = _find(load_cfg(config_path), queue_id)
        try:
            click.echo(action(spool, queue_id))
        finally:
            spool.close()


for _name, (_help, _action) in QUEUE_ACTIONS.items():
    _register_queue_action(_name, _help, _action)


# --- send --------------------------------------------------------------------------------


@main.command()
@click.argument("recipients", nargs=-1, required=True)
@click.option("--from", "sender", required=True, help="Envelope sender (use '' for none).")
@click.option("--file", "message_file", type=click.File("rb"), default="-",
              help="The message (RFC 5322); standard input by default.")
@config_option
def send(recipients: tuple[str, ...], sender: str, message_file: Any, config_path: str) -> None:
    """Queue a message for RECIPIENTS, like sendmail: it is picked up by the server."""
    from hayate.ingest.ingest import Ingest
    from hayate.ingest.routing import Router
    from hayate.store.spool import Spool, spool_path

    cfg = load_cfg(config_path)
    raw = message_file.read(cfg.limits.max_message_size + 1)
    if len(raw) > cfg.limits.max_message_size:
        raise CliError(f"message larger than max_message_size ({cfg.limits.max_message_size})")
    data = b"\r\n".join(raw.replace(b"\r\n", b"\n").split(b"\n"))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"

    async def inject(store: Any) -> str:
        spool = Spool(spool_path(cfg.spool_dir, 0), 0)
        try:
            ingest = Ingest(
                hostname=cfg.hostname,
                spool=spool,
                router=Router(cfg.local_domains, cfg.transport),
                expand_alias=store.expand,
            )
            return await ingest.inject(sender, list(recipients), data, origin="hayate-send")
        finally:
            spool.close()

    from hayate.core.reply import SmtpError

    with cli_errors():
        try:
            queue_id = run_async(lambda: with_store(cfg, inject))
        except SmtpError as exc:
            raise CliError(str(exc.reply)) from exc
    click.echo(f"queued as {queue_id}")


# --- command groups that live in hayate.commands -----------------------------------------
for _command in (*users_commands.COMMANDS, *dkim_commands.COMMANDS, *dnscheck_commands.COMMANDS,
                 *bounces_commands.COMMANDS, *suppression_commands.COMMANDS,
                 *events_commands.COMMANDS):
    main.add_command(_command)
queue.add_command(sites_command)


if __name__ == "__main__":
    main()
