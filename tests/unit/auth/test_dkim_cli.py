"""``hayate dkim ...`` through click's CliRunner against a real config and key folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hayate.auth.dkim_keys import DkimKeyStore
from hayate.cli import main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hayate.toml"
    path.write_text('hostname = "mx.example.com"\ndata_dir = "."\n')
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["dkim", *args, "-c", str(config)])


def test_keygen_prints_record_ready_to_paste(config: Path) -> None:
    res = run(config, "keygen", "example.com", "--selector", "s2026a")
    assert res.exit_code == 0, res.output
    assert "created rsa-2048 key s2026a for example.com (active)" in res.output
    assert "name:  s2026a._domainkey.example.com" in res.output
    assert "type:  TXT" in res.output
    value = re.search(r"^value: (.+)$", res.output, re.M)
    assert value and value.group(1).startswith("v=DKIM1; k=rsa; p=MIIB")
    zone = re.search(r"^s2026a\._domainkey\.example\.com\. IN TXT (.+)$", res.output, re.M)
    assert zone
    strings = re.findall(r'"([^"]*)"', zone.group(1))
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings)
    assert "".join(strings) == value.group(1)
    # the key is where the server will look for it
    key = DkimKeyStore(config.parent / "dkim").get("example.com", "s2026a")
    assert key.state == "active"


def test_rotation_list_show_retire(config: Path) -> None:
    first_keys = (
        ["--selector", "old", "--bits", "1024"],
        ["--algo", "ed25519", "--selector", "ed"],
    )
    for args in first_keys:
        assert run(config, "keygen", "example.com", *args).exit_code == 0
    res = run(config, "keygen", "example.com", "--selector", "new", "--bits", "1024")
    assert res.exit_code == 0
    assert "old no longer signs; keep its record in DNS" in res.output

    listing = run(config, "list").output
    rows = {line.split()[1]: line.split() for line in listing.splitlines()[1:]}
    assert rows["old"][2:4] == ["rsa-1024", "published"]
    assert rows["ed"][2:4] == ["ed25519", "active"]
    assert rows["new"][2:4] == ["rsa-1024", "active"]
    assert "old._domainkey.example.com  (not signing; keep in DNS)" in listing

    shown = run(config, "show", "example.com", "ed")
    assert shown.exit_code == 0 and "value: v=DKIM1; k=ed25519; p=" in shown.output

    res = run(config, "retire", "example.com", "old")
    assert res.exit_code == 0 and "remove old._domainkey.example.com from DNS" in res.output
    assert " retired " in run(config, "list", "example.com").output


def test_publish_only_then_activate(config: Path) -> None:
    run(config, "keygen", "example.com", "--algo", "ed25519", "--selector", "cur")
    res = run(config, "keygen", "example.com", "--algo", "ed25519", "--selector", "nxt",
              "--publish-only")
    assert "(published)" in res.output
    assert run(config, "activate", "example.com", "nxt").exit_code == 0
    states = {k.selector: k.state for k in DkimKeyStore(config.parent / "dkim").keys("example.com")}
    assert states == {"cur": "published", "nxt": "active"}


def test_retiring_last_active_key_warns(config: Path) -> None:
    run(config, "keygen", "example.com", "--algo", "ed25519", "--selector", "only")
    res = run(config, "retire", "example.com", "only")
    assert "warning: example.com has no active key left" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "unknown.example"], "no DKIM keys for domain unknown.example"),
        (["show", "unknown.example", "s1"], "no DKIM keys for domain unknown.example"),
        (["retire", "example.com", "nope"], "no DKIM key with selector 'nope' for example.com"),
        (["keygen", "example.com", "--selector", "s1", "--algo", "ed25519"],
         "selector 's1' already exists for example.com"),
        (["keygen", "not a domain"], "not a domain name: 'not a domain'"),
    ],
)
def test_errors_are_one_readable_line(config: Path, args: list[str], message: str) -> None:
    run(config, "keygen", "example.com", "--algo", "ed25519", "--selector", "s1")
    res = run(config, *args)
    assert res.exit_code == 1
    assert res.output.strip() == f"Error: {message}"


def test_bad_algo_is_refused(config: Path) -> None:
    res = run(config, "keygen", "example.com", "--algo", "dsa")
    assert res.exit_code == 2 and "'dsa' is not one of 'rsa', 'ed25519'" in res.output


def test_empty_list(config: Path) -> None:
    res = run(config, "list")
    assert res.exit_code == 0 and "no DKIM keys" in res.output
