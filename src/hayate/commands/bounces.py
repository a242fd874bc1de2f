"""``hayate bounces parse FILE...``: what inbound bounce / complaint / auto-reply files say.

One JSON object per line for each recipient found, with the same parser the server runs on
mail that arrives at the bounce domain. No config is needed. A file that cannot be read is
reported on standard error and makes the exit status 1 once every other file is parsed; a
message in which nothing is recognised prints one line with kind "unknown" and recipient null.
An mbox file (several "From " separated messages) is parsed message by message; "-" reads
standard input.
"""

from __future__ import annotations

import json
import sys

import click

from hayate.bounces.message import split_mbox
from hayate.bounces.parse import parse_message
from hayate.bounces.records import BounceRecord


@click.group()
def bounces() -> None:
    """Inbound bounces (DSNs and non-standard ones), complaints (ARF) and auto-replies."""


def _line(name: str, record: BounceRecord, verbose: bool) -> str:
    row: dict[str, object] = {
        "file": name,
        "recipient": record.recipient or None,
        "kind": record.kind,
        "reason": record.reason,
        "status": record.status,
        "remote_reply": record.remote_reply,
    }
    if verbose:
        row["original_sender"] = record.original_sender
        row["original_message_id"] = record.original_message_id
    return json.dumps(row, ensure_ascii=False)


@bounces.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also print original_sender (the returned message's Return-Path, for VERP) and "
    "original_message_id.",
)
def parse(files: tuple[str, ...], verbose: bool) -> None:
    """Print one JSON object per line for each recipient FILE reports on."""
    failed = False
    for name in files:
        try:
            if name == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(name, "rb") as handle:
                    data = handle.read()
        except OSError as exc:
            click.echo(f"hayate bounces parse: {name}: {exc.strerror or exc}", err=True)
            failed = True
            continue
        for message in split_mbox(data):
            for record in parse_message(message):
                click.echo(_line(name, record, verbose))
    if failed:
        sys.exit(1)


COMMANDS = [bounces]
