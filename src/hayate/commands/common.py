"""What every ``hayate`` subcommand shares: the ``-c`` option, readable errors, store access.

Command groups live in one module each under ``hayate.commands`` and import these helpers;
``hayate.cli`` builds the top-level group and adds them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from hayate.config import Config, ConfigError, load_config

T = TypeVar("T")

DEFAULT_CONFIG = "var/hayate.toml"
config_option = click.option(
    "-c",
    "--config",
    "config_path",
    default=lambda: os.environ.get("HAYATE_CONFIG", DEFAULT_CONFIG),
    show_default="$HAYATE_CONFIG or var/hayate.toml",
    help="Path of the TOML config file.",
)


class CliError(click.ClickException):
    """A readable error; exit status 1."""


def load_cfg(config_path: str) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def run_async(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


@contextmanager
def cli_errors() -> Iterator[None]:
    from hayate.store.base import StoreError

    try:
        yield
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from exc


async def with_store(cfg: Config, fn: Callable[[Any], Awaitable[T]]) -> T:
    from hayate.store import open_store

    store = open_store(cfg.store.url, cfg.sqlite_path)
    await store.create()
    try:
        await store.migrate()
        return await fn(store)
    finally:
        await store.close()


def store_call(cfg: Config, op: Callable[[Any], Awaitable[T]]) -> T:
    """Run one store operation; store and OS errors become one readable line."""
    with cli_errors():
        return run_async(lambda: with_store(cfg, op))
