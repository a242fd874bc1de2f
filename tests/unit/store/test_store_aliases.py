"""Aliases on both engines: storing them, and recursive expansion with catch-alls and loops."""

from __future__ import annotations

import itertools

import pytest

from hayate.store.base import Alias, AliasDepthExceeded, InvalidAddress
from hayate.store.sqlstore import SqlStore


async def test_add_get_list_delete(store: SqlStore) -> None:
    alias = await store.add_alias("Sales@Example.com", ["Amy@Example.com", "boss@partner.example"])
    assert alias == Alias("sales@example.com", ("amy@example.com", "boss@partner.example"))
    assert await store.get_alias("SALES@example.com") == ["amy@example.com", "boss@partner.example"]
    await store.add_alias("@Example.org", ["amy@example.com"])
    assert await store.list_aliases() == [
        Alias("@example.org", ("amy@example.com",)),
        alias,
    ]
    assert await store.delete_alias("sales@example.com") is True
    assert await store.delete_alias("sales@example.com") is False
    assert await store.get_alias("sales@example.com") is None
    assert await store.get_alias("not an address") is None
    assert await store.list_aliases() == [Alias("@example.org", ("amy@example.com",))]


async def test_adding_again_replaces_the_targets(store: SqlStore) -> None:
    await store.add_alias("team@example.com", ["a@example.com", "b@example.com"])
    await store.add_alias("team@example.com", ["c@example.com", "a@example.com", "C@example.com"])
    assert await store.get_alias("team@example.com") == ["c@example.com", "a@example.com"]


@pytest.mark.parametrize(
    ("source", "targets"),
    [
        ("team@example.com", []),
        ("team", ["a@example.com"]),
        ("team@example.com", ["@example.com"]),
        ("team@example.com", ["a@b@example.com"]),
        ("@", ["a@example.com"]),
    ],
)
async def test_bad_aliases_are_refused(store: SqlStore, source: str, targets: list[str]) -> None:
    with pytest.raises(InvalidAddress):
        await store.add_alias(source, targets)
    assert await store.list_aliases() == []


async def test_address_without_alias_expands_to_itself(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    assert await store.expand("Amy@Example.com") == ["amy@example.com"]
    assert await store.expand("someone@remote.example") == ["someone@remote.example"]
    with pytest.raises(InvalidAddress):
        await store.expand("no-domain")


async def test_nested_aliases_reach_accounts_and_remote_addresses(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    await store.add_account("bob@example.com", "pw")
    await store.add_alias("all@example.com", ["staff@example.com", "board@example.com"])
    await store.add_alias("staff@example.com", ["amy@example.com", "bob@example.com"])
    await store.add_alias("board@example.com", ["bob@example.com", "chair@remote.example"])
    assert await store.expand("all@example.com") == [
        "amy@example.com",
        "bob@example.com",
        "chair@remote.example",
    ]


async def test_catch_all(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    await store.add_account("bob@example.com", "pw")
    await store.add_alias("@example.com", ["amy@example.com"])
    await store.add_alias("sales@example.com", ["bob@example.com"])
    # Unknown local part: the catch-all takes it.
    assert await store.expand("whatever@example.com") == ["amy@example.com"]
    # An exact alias wins over the catch-all, and an existing account keeps its mail.
    assert await store.expand("sales@example.com") == ["bob@example.com"]
    assert await store.expand("bob@example.com") == ["bob@example.com"]
    # Other domains are not touched.
    assert await store.expand("whatever@example.net") == ["whatever@example.net"]


async def test_catch_all_to_a_missing_address_terminates(store: SqlStore) -> None:
    await store.add_alias("@example.com", ["postmaster@example.com"])
    assert await store.expand("x@example.com") == ["postmaster@example.com"]


async def test_loops_terminate(store: SqlStore) -> None:
    await store.add_alias("a@example.com", ["b@example.com"])
    await store.add_alias("b@example.com", ["c@example.com"])
    await store.add_alias("c@example.com", ["a@example.com", "out@remote.example"])
    # The address that closes the loop is final; nothing is repeated.
    assert await store.expand("a@example.com") == ["a@example.com", "out@remote.example"]
    assert await store.expand("b@example.com") == ["b@example.com", "out@remote.example"]


async def test_self_reference_keeps_a_copy(store: SqlStore) -> None:
    await store.add_account("amy@example.com", "pw")
    await store.add_alias("amy@example.com", ["amy@example.com", "archive@remote.example"])
    assert await store.expand("amy@example.com") == ["amy@example.com", "archive@remote.example"]


async def test_duplicates_are_removed(store: SqlStore) -> None:
    await store.add_alias("x@example.com", ["y@example.com", "z@example.com", "t@r.example"])
    await store.add_alias("y@example.com", ["t@r.example", "u@r.example"])
    await store.add_alias("z@example.com", ["u@r.example", "y@example.com"])
    assert await store.expand("x@example.com") == ["t@r.example", "u@r.example"]


async def test_depth_limit(store: SqlStore) -> None:
    chain = [f"l{i}@example.com" for i in range(12)]
    for source, target in itertools.pairwise(chain):
        await store.add_alias(source, [target])
    assert await store.expand(chain[0], max_depth=11) == [chain[11]]
    assert await store.expand(chain[1], max_depth=10) == [chain[11]]
    with pytest.raises(AliasDepthExceeded):
        await store.expand(chain[0], max_depth=10)
    with pytest.raises(AliasDepthExceeded):
        await store.expand(chain[0])
