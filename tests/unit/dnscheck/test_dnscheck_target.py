"""What ``hayate dns check`` takes from the config and the key store."""

from __future__ import annotations

from pathlib import Path

from hayate.auth.dkim_keys import DkimKeyStore
from hayate.commands.dnscheck import build_target
from hayate.config import Config
from hayate.dnscheck.target import SendingIp


def _cfg(tmp_path: Path, **extra: object) -> Config:
    return Config.model_validate({
        "hostname": "MX.Hayate.Test.", "data_dir": str(tmp_path),
        "local_domains": ["example.test"], **extra,
    })


def test_sources_of_the_domains_pool_else_every_source_with_an_address(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, egress={
        "sources": [
            {"name": "a", "address": "192.0.2.1", "helo": "a.hayate.test"},
            {"name": "b", "address": "192.0.2.2"},
            {"name": "any"},  # the system's choice: no address to check
        ],
        "pools": [{"name": "bulk", "sources": [{"source": "b"}]}],
        "domain_pools": {"news.test": "bulk"},
    })
    assert build_target(cfg, "news.test").egress == (
        SendingIp("192.0.2.2", "mx.hayate.test", "b"),
    )
    target = build_target(cfg, "example.test")
    assert [ip.address for ip in target.egress] == ["192.0.2.1", "192.0.2.2"]
    assert target.egress[0].helo == "a.hayate.test"
    assert target.hostname == "mx.hayate.test" and target.local


def test_local_means_a_local_domain_or_the_bounce_domain(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, bounces={"domain": "bounce.example.test"})
    assert build_target(cfg, "bounce.example.test").local
    assert not build_target(cfg, "other.test").local
    assert build_target(cfg, "other.test").egress == ()


def test_dkim_keys_come_with_their_state_and_record(tmp_path: Path) -> None:
    store = DkimKeyStore(tmp_path / "dkim")
    store.generate("example.test", "ed25519", "old")
    store.generate("example.test", "ed25519", "new")  # demotes "old" to published
    target = build_target(_cfg(tmp_path), "example.test")
    states = {k.selector: (k.state, k.record.name) for k in target.dkim_keys}
    assert states == {
        "old": ("published", "old._domainkey.example.test"),
        "new": ("active", "new._domainkey.example.test"),
    }
    assert all(k.record.value.startswith("v=DKIM1; k=ed25519; p=") for k in target.dkim_keys)


def test_an_unreadable_key_store_is_reported_not_raised(tmp_path: Path) -> None:
    folder = tmp_path / "dkim" / "example.test"
    folder.mkdir(parents=True)
    (folder / "s1.json").write_text('{"algorithm": "rsa", "state": "active"}')
    (folder / "s1.pem").write_text("not a key")
    target = build_target(_cfg(tmp_path), "example.test")
    assert target.dkim_keys == () and "cannot read" in target.dkim_error
