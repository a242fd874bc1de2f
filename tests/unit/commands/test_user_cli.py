"""``hayate user ...`` on a real config and SQLite store, through Click's runner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.support.hayate_server import render_config

from hayate.cli import main
from hayate.store.sqlite import SqliteStore


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hayate.toml"
    path.write_text(render_config({"data_dir": "data", "local_domains": ["example.test"]}, {},
                                  []))
    return path


def run(config: Path, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "-c", str(config)], input=input)
    return result.exit_code, result.output


def store_of(config: Path) -> SqliteStore:
    return SqliteStore(config.parent / "data" / "hayate.db")


def authenticates(config: Path, address: str, password: str) -> bool:
    async def check() -> bool:
        async with store_of(config) as store:
            return await store.authenticate(address, password) is not None

    return asyncio.run(check())


def deliver(config: Path, address: str, size: int, mailbox: str = "INBOX") -> None:
    async def put() -> None:
        async with store_of(config) as store:
            await store.deliver(address, b"Subject: x\r\n\r\n" + b"y" * (size - 15) + b"\n",
                                mailbox=mailbox)

    asyncio.run(put())


def test_add_with_a_quota_list_and_show(config: Path) -> None:
    code, out = run(config, "user", "add", "Alice@Example.test", "--quota", "500M",
                    input="pw-alice\n")
    assert (code, out) == (0, "added alice@example.test (quota 500M)\n")
    assert run(config, "user", "add", "bob@example.test", input="pw-bob\n")[0] == 0
    deliver(config, "alice@example.test", 3 * 1024 * 1024)
    deliver(config, "alice@example.test", 1024, mailbox="Sent")
    run(config, "user", "disable", "bob@example.test")
    code, out = run(config, "user", "list")
    assert code == 0
    header, alice, bob = out.splitlines()
    assert header.split() == ["ADDRESS", "USED", "QUOTA", "USE%", "STATE"]
    assert alice.split() == ["alice@example.test", "3M", "500M", "0.6%", "enabled"]
    assert bob.split() == ["bob@example.test", "0B", "none", "-", "disabled"]

    code, out = run(config, "user", "show", "alice@example.test")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "address:  alice@example.test"
    assert lines[1].startswith("created:  20") and lines[1].endswith(" UTC")
    assert lines[2] == "state:    enabled"
    assert lines[3] == "storage:  3M of 500M (0.6%)"
    assert lines[4] == "folders:"
    folders = {line.split()[0]: line.split()[1:] for line in lines[5:]}
    assert folders["INBOX"] == ["1", "message"]
    assert folders["Sent"][:2] == ["1", "message"]
    assert "bob@example.test" in run(config, "user", "show", "bob@example.test")[1]
    assert "disabled (receives mail, cannot log in)" in run(
        config, "user", "show", "bob@example.test")[1]


def test_quota_passwd_enable_disable_del(config: Path) -> None:
    run(config, "user", "add", "carol@example.test", input="first-pw\n")
    deliver(config, "carol@example.test", 2048)
    code, out = run(config, "user", "quota", "carol@example.test", "1024K")
    assert (code, out) == (0, "quota of carol@example.test: 1M; used 2K of 1M (0.2%)\n")
    code, out = run(config, "user", "quota", "carol@example.test", "1K")
    assert code == 0 and "used 2K of 1K (200.0%)" in out
    assert "the mailbox is full" in out
    code, out = run(config, "user", "quota", "carol@example.test", "none")
    assert (code, out) == (0, "quota of carol@example.test: none; used 2K (no quota)\n")

    code, out = run(config, "user", "passwd", "carol@example.test", input="second-pw\n")
    assert (code, out) == (0, "password of carol@example.test changed\n")
    assert authenticates(config, "carol@example.test", "second-pw")
    assert not authenticates(config, "carol@example.test", "first-pw")

    code, out = run(config, "user", "disable", "carol@example.test")
    assert (code, out) == (0, "carol@example.test: disabled\n")
    assert not authenticates(config, "carol@example.test", "second-pw")
    code, out = run(config, "user", "enable", "Carol@example.test")
    assert (code, out) == (0, "carol@example.test: enabled\n")
    assert authenticates(config, "carol@example.test", "second-pw")

    assert run(config, "user", "del", "carol@example.test") == (0, "deleted carol@example.test\n")
    assert "no accounts" in run(config, "user", "list")[1]


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (("quota", "nobody@example.test", "1G"), None, 1, "no such account: nobody@example.test"),
        (("show", "nobody@example.test"), None, 1, "no such account: nobody@example.test"),
        (("passwd", "nobody@example.test"), "pw\n", 1, "no such account: nobody@example.test"),
        (("disable", "nobody@example.test"), None, 1, "no such account: nobody@example.test"),
        (("del", "nobody@example.test"), None, 1, "no such account: nobody@example.test"),
        (("quota", "dora@example.test", "5X"), None, 2, "'5X' is not a size"),
        (("quota", "dora@example.test", "1.5"), None, 2, "a number of bytes must be whole"),
        (("add", "eve@example.test", "--quota", "lots"), "pw\n", 2, "'lots' is not a size"),
        (("add", "eve@elsewhere.test"), "pw\n", 1, "elsewhere.test is not in local_domains"),
        (("add", "not-an-address"), "pw\n", 1, "not an address"),
        (("add", "dora@example.test"), "pw\n", 1, "already exists"),
        (("add", "eve@example.test"), "\n", 1, "empty password"),
        (("passwd", "dora@example.test"), "\n", 1, "empty password"),
    ],
)
def test_errors_are_one_readable_line(config: Path, args: tuple[str, ...], stdin: str | None,
                                      code: int, message: str) -> None:
    run(config, "user", "add", "dora@example.test", input="dora-pw\n")
    got_code, out = run(config, "user", *args, input=stdin)
    assert got_code == code, out
    assert message in out
    assert "Traceback" not in out
    assert authenticates(config, "dora@example.test", "dora-pw")
