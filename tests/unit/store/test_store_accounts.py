"""Accounts on both engines: create, look up, passwords (argon2), disable, delete."""

from __future__ import annotations

import time

import pytest
from argon2 import PasswordHasher
from tests.support.clock import FakeClock
from tests.unit.store.store_helpers import raw_rows, sibling

from hayate.store.base import AccountExists, InvalidAddress
from hayate.store.passwords import Passwords
from hayate.store.sqlstore import SqlStore


async def test_add_and_get_account(store: SqlStore, clock: FakeClock) -> None:
    account = await store.add_account("Alice@Example.COM", "s3cret", quota_bytes=5000)
    assert account.address == "alice@example.com"
    assert account.created == clock.now()
    assert (account.quota_bytes, account.used_bytes, account.disabled) == (5000, 0, False)
    assert await store.get_account("ALICE@example.com") == account
    assert await store.get_account("nobody@example.com") is None
    assert await store.get_account("not-an-address") is None


async def test_list_accounts_sorted_and_by_domain(store: SqlStore) -> None:
    for address in ("zed@b.example", "amy@a.example", "bob@b.example"):
        await store.add_account(address, "pw")
    assert [a.address for a in await store.list_accounts()] == [
        "amy@a.example",
        "bob@b.example",
        "zed@b.example",
    ]
    assert [a.address for a in await store.list_accounts("B.Example")] == [
        "bob@b.example",
        "zed@b.example",
    ]
    assert await store.list_accounts("c.example") == []


async def test_duplicate_account_is_refused_whatever_the_case(store: SqlStore) -> None:
    await store.add_account("carol@example.com", "one")
    with pytest.raises(AccountExists) as info:
        await store.add_account("CAROL@example.com", "two")
    assert info.value.address == "carol@example.com"
    # The first password is still the one that works.
    assert await store.authenticate("carol@example.com", "one") is not None
    assert await store.authenticate("carol@example.com", "two") is None


@pytest.mark.parametrize(
    "address", ["nobody", "a@b@example.com", "@example.com", "user@", "two words@example.com", ""]
)
async def test_malformed_address_is_refused(store: SqlStore, address: str) -> None:
    with pytest.raises(InvalidAddress):
        await store.add_account(address, "pw")
    assert await store.list_accounts() == []


async def test_empty_password_is_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError):
        await store.add_account("dave@example.com", "")


async def test_authenticate(store: SqlStore) -> None:
    await store.add_account("erin@example.com", "correct horse")
    ok = await store.authenticate("Erin@Example.com", "correct horse")
    assert ok is not None and ok.address == "erin@example.com"
    assert await store.authenticate("erin@example.com", "Correct horse") is None
    assert await store.authenticate("erin@example.com", "") is None
    assert await store.authenticate("ghost@example.com", "correct horse") is None
    assert await store.authenticate("no-at-sign", "correct horse") is None


async def test_what_is_stored_is_an_argon2id_hash(store: SqlStore) -> None:
    password = "pa55-w0rd-visible?"
    await store.add_account("frank@example.com", password)
    rows = await raw_rows(
        store, "SELECT password_hash FROM accounts WHERE address = ?", ("frank@example.com",)
    )
    stored = rows[0][0]
    assert stored.startswith("$argon2id$")
    assert password not in stored
    assert PasswordHasher().verify(stored, password)


async def test_set_password(store: SqlStore) -> None:
    await store.add_account("gina@example.com", "old")
    assert await store.set_password("GINA@example.com", "new") is True
    assert await store.authenticate("gina@example.com", "old") is None
    assert await store.authenticate("gina@example.com", "new") is not None
    assert await store.set_password("ghost@example.com", "new") is False


async def test_login_rehashes_a_hash_made_with_old_parameters(store: SqlStore) -> None:
    await store.add_account("hank@example.com", "pw")  # cheap parameters (m=1024)
    newer = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    other = sibling(store, newer)
    query = "SELECT password_hash FROM accounts WHERE address = ?"
    async with other:
        assert (await raw_rows(store, query, ("hank@example.com",)))[0][0].count("m=1024,")
        assert await other.authenticate("hank@example.com", "wrong") is None
        assert "m=1024," in (await raw_rows(store, query, ("hank@example.com",)))[0][0]
        assert await other.authenticate("hank@example.com", "pw") is not None
        upgraded = (await raw_rows(store, query, ("hank@example.com",)))[0][0]
    assert "m=2048,t=2" in upgraded
    assert await store.authenticate("hank@example.com", "pw") is not None


async def test_unknown_account_costs_a_hash_verification(store: SqlStore) -> None:
    # A login to a missing account verifies a dummy hash, so its timing does not tell
    # whether the account exists. Load only adds time, so the fastest of a few tries counts.
    slow = Passwords(PasswordHasher(time_cost=2, memory_cost=32768, parallelism=1))
    other = sibling(store, slow)
    wrong: list[float] = []
    missing: list[float] = []
    async with other:
        await other.add_account("ivy@example.com", "pw")
        await other.authenticate("ghost@example.com", "pw")  # builds the dummy hash once
        for _ in range(3):
            for address, times in (("ivy@example.com", wrong), ("ghost@example.com", missing)):
                start = time.perf_counter()
                assert await other.authenticate(address, "nope") is None
                times.append(time.perf_counter() - start)
    assert min(wrong) > 0.005
    assert min(missing) > min(wrong) * 0.3


async def test_disabled_account_cannot_log_in(store: SqlStore) -> None:
    await store.add_account("jane@example.com", "pw")
    assert await store.set_disabled("jane@example.com", True) is True
    account = await store.get_account("jane@example.com")
    assert account is not None and account.disabled
    assert await store.authenticate("jane@example.com", "pw") is None
    assert await store.set_disabled("jane@example.com", False) is True
    assert await store.authenticate("jane@example.com", "pw") is not None
    assert await store.set_disabled("ghost@example.com", True) is False


async def test_set_quota(store: SqlStore) -> None:
    await store.add_account("kim@example.com", "pw")
    assert await store.set_quota("kim@example.com", 1234) is True
    account = await store.get_account("kim@example.com")
    assert account is not None and account.quota_bytes == 1234
    assert await store.set_quota("ghost@example.com", 1) is False
    with pytest.raises(ValueError):
        await store.set_quota("kim@example.com", -1)


async def test_delete_account(store: SqlStore) -> None:
    await store.add_account("leo@example.com", "pw")
    await store.add_account("mia@example.com", "pw")
    assert await store.delete_account("LEO@example.com") is True
    assert await store.delete_account("leo@example.com") is False
    assert await store.get_account("leo@example.com") is None
    assert await store.authenticate("leo@example.com", "pw") is None
    assert [a.address for a in await store.list_accounts()] == ["mia@example.com"]
    # The address can be used again afterwards.
    await store.add_account("leo@example.com", "again")
    assert await store.authenticate("leo@example.com", "again") is not None
