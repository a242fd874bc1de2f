"""``POST /account/password`` on the real app served by uvicorn on 127.0.0.1, driven with
curl; the store is a real SQLite file and the clock a fake one (for the rate-limit window)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.integration.http.conftest import CurlResult, acurl, serving
from tests.support.clock import FakeClock
from tests.support.store import sqlite_store

from hayate.config import parse_config
from hayate.http.account import AccountSettings
from hayate.http.app import build_app
from hayate.http.storeaccess import StoreAccess
from hayate.store.sqlite import SqliteStore

ALICE = "alice@example.test"
FAST = AccountSettings(failure_delay=0.3, max_failures_per_address=3,
                       max_failures_per_client=5, failure_window=600.0)


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    async with sqlite_store(tmp_path / "hayate.db", clock) as opened:
        await opened.add_account(ALICE, "old-password")
        yield opened


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def start(tmp_path: Path, store: SqliteStore, clock: FakeClock,
                settings: AccountSettings = FAST) -> AsyncIterator[int]:
    cfg = parse_config('local_domains = ["example.test"]\ndata_dir = "data"', tmp_path)
    app = build_app(cfg, StoreAccess(cfg, store), account_settings=settings, clock=clock)
    async with serving(app) as port:
        yield port


@pytest.fixture
async def port(tmp_path: Path, store: SqliteStore, clock: FakeClock) -> AsyncIterator[int]:
    async for p in start(tmp_path, store, clock):
        yield p


async def change(port: int, folder: Path, user: str | None, *args: str,
                 new: str | None = "new password 2") -> CurlResult:
    extra = ["-u", user] if user is not None else []
    if new is not None:
        extra += ["-H", "Content-Type: application/json", "--data-binary",
                  json.dumps({"new_password": new})]
    return await acurl(f"http://127.0.0.1:{port}/account/password", *extra, *args,
                       folder=folder)


def error_of(result: CurlResult) -> str:
    return str(json.loads(result.body)["error"])


async def test_change_with_json_then_with_a_form(
    port: int, store: SqliteStore, tmp_path: Path
) -> None:
    got = await change(port, tmp_path, f"{ALICE}:old-password")
    assert got.status == 200, got.body
    assert json.loads(got.body) == {"status": "password changed", "address": ALICE}
    assert await store.authenticate(ALICE, "new password 2") is not None
    assert await store.authenticate(ALICE, "old-password") is None
    got = await acurl(f"http://127.0.0.1:{port}/account/password", "-u",
                      "Alice@Example.TEST:new password 2",
                      "--data-urlencode", "new_password=third&pw=ü", folder=tmp_path)
    assert got.status == 200, got.body
    assert await store.authenticate(ALICE, "third&pw=ü") is not None


async def test_wrong_passwords_are_delayed_then_rate_limited_per_address(
    port: int, store: SqliteStore, clock: FakeClock, tmp_path: Path
) -> None:
    for _ in range(FAST.max_failures_per_address):
        started = time.monotonic()
        got = await change(port, tmp_path, f"{ALICE}:guess")
        assert got.status == 401 and error_of(got) == "wrong address or password"
        assert time.monotonic() - started >= FAST.failure_delay
        assert 'www-authenticate: basic realm="hayate"' in got.headers.lower()
    got = await change(port, tmp_path, f"{ALICE}:old-password")  # right, but locked now
    assert got.status == 429
    assert "retry-after: 600" in got.headers.lower()
    assert await store.authenticate(ALICE, "old-password") is not None
    clock.advance(FAST.failure_window)
    assert (await change(port, tmp_path, f"{ALICE}:old-password")).status == 200


async def test_clients_behind_a_local_proxy_are_limited_one_by_one(
    port: int, tmp_path: Path
) -> None:
    client = ["-H", "X-Forwarded-For: 203.0.113.9, 198.51.100.7"]
    for n in range(FAST.max_failures_per_client):
        got = await change(port, tmp_path, f"user{n}@example.test:guess", *client)
        assert got.status == 401
    got = await change(port, tmp_path, f"{ALICE}:old-password", *client)
    assert got.status == 429
    other = ["-H", "X-Forwarded-For: 198.51.100.8"]
    assert (await change(port, tmp_path, f"{ALICE}:old-password", *other)).status == 200


async def test_refusals_leave_the_password_alone(
    port: int, store: SqliteStore, tmp_path: Path
) -> None:
    right = f"{ALICE}:old-password"
    got = await change(port, tmp_path, None)
    assert got.status == 401 and "www-authenticate: basic" in got.headers.lower()
    got = await change(port, tmp_path, right, "-H", "X-Forwarded-Proto: http")
    assert got.status == 403 and "HTTPS" in error_of(got)
    got = await change(port, tmp_path, right, new="")
    assert got.status == 400 and error_of(got) == "the new password is empty"
    got = await change(port, tmp_path, right, new="two\r\nlines")
    assert got.status == 400 and "control characters" in error_of(got)
    got = await change(port, tmp_path, right, new="x" * 1025)
    assert got.status == 400 and "longer than 1024" in error_of(got)
    got = await acurl(f"http://127.0.0.1:{port}/account/password", "-u", right, "-H",
                      "Content-Type: text/plain", "--data-binary", "new_password=x",
                      folder=tmp_path)
    assert got.status == 415
    got = await acurl(f"http://127.0.0.1:{port}/account/password", "-u", right,
                      "--data-binary", "new_password=" + "y" * 10_000, folder=tmp_path)
    assert got.status == 400 and "larger than 4096" in error_of(got)
    assert (await change(port, tmp_path, "nobody@example.test:old-password")).status == 401
    await store.set_disabled(ALICE, True)
    assert (await change(port, tmp_path, right)).status == 401
    await store.set_disabled(ALICE, False)
    assert await store.authenticate(ALICE, "old-password") is not None
    got = await change(port, tmp_path, right, "-H", "X-Forwarded-Proto: https")
    assert got.status == 200


async def test_plaintext_auth_allows_plain_http(
    tmp_path: Path, store: SqliteStore, clock: FakeClock
) -> None:
    settings = AccountSettings(plaintext_auth=True)
    async for port in start(tmp_path, store, clock, settings):
        got = await change(port, tmp_path, f"{ALICE}:old-password",
                           "-H", "X-Forwarded-Proto: http")
        assert got.status == 200


async def test_guesses_sent_in_parallel_cannot_pass_the_limit(
    port: int, store: SqliteStore, tmp_path: Path
) -> None:
    # Eight wrong guesses at once: each is counted before its password is checked, so only
    # the first three (the per-address limit) are checked at all; the rest get 429 at once.
    folders = [tmp_path / f"client-{i}" for i in range(8)]
    for folder in folders:
        folder.mkdir()
    results = await asyncio.gather(*(
        change(port, folder, f"{ALICE}:guess-{i}") for i, folder in enumerate(folders)
    ))
    statuses = sorted(r.status for r in results)
    assert statuses.count(401) == FAST.max_failures_per_address
    assert statuses.count(429) == 8 - FAST.max_failures_per_address
    assert await store.authenticate(ALICE, "old-password") is not None
