"""The autoconfig app served by uvicorn in-process: listeners on port 0 are announced with
the port they really bound, which ``hayate serve`` hands to the app."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests.integration.http.conftest import acurl, serving

from hayate.config import parse_config
from hayate.http.app import build_app


async def test_bound_ports_replace_port_zero(tmp_path: Path) -> None:
    cfg = parse_config(
        'hostname = "mx.example.test"\nlocal_domains = ["example.test"]\ndata_dir = "data"\n'
        '[listen]\nimaps = "127.0.0.1:0"\npop3 = "127.0.0.1:0"\nsubmission = "127.0.0.1:0"\n',
        tmp_path)
    app = build_app(cfg, bound_ports={"imaps": 40993, "submission": 40587})
    async with serving(app) as port:
        got = await acurl(f"http://127.0.0.1:{port}/.well-known/autoconfig/mail/"
                          "config-v1.1.xml", "-H", "Host: example.test", folder=tmp_path)
    assert got.status == 200
    provider = ET.fromstring(got.body).find("emailProvider")
    assert provider is not None
    assert [(s.get("type"), s.findtext("port"), s.findtext("socketType"))
            for s in provider.findall("*[@type]")] == [
        ("imap", "40993", "SSL"), ("smtp", "40587", "STARTTLS")]  # pop3: port unknown
