"""The HTTP app served by worker 0: ``/health``, ``/metrics`` (Prometheus text format), mail
client autoconfiguration (``hayate.http.autoconfig``, unless ``[autoconfig] enabled`` is
false) and the own-password change (``hayate.http.account``).

One app answers on both listeners, ``[listen] http`` (plain) and ``[listen] https`` (TLS with
the ``[tls]`` certificate, checked at start by ``hayate.tls.check_server_tls``): they share
its failure limits. A request
that came over the TLS listener has the ASGI scheme ``https`` (uvicorn sets it from the
connection itself, never from a header), which is what the password change asks for.

Counters come from the small JSON files every worker publishes under ``data_dir/run``
(summed here), queue sizes from the spool shards themselves, so the answer covers the whole
node and not only the worker that happens to serve the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
from collections.abc import Iterator, Mapping

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hayate import __version__
from hayate.config import Config
from hayate.core.seams import Clock
from hayate.http.account import AccountSettings, account_router
from hayate.http.autoconfig import autoconfig_router
from hayate.http.storeaccess import StoreAccess
from hayate.store.base import Store
from hayate.store.spool import open_all

STATS_STALE_AFTER = 10.0  # seconds: a worker that has not written for this long is down


def read_worker_stats(cfg: Config) -> list[dict[str, object]]:
    out = []
    for path in sorted((cfg.data_dir / "run").glob("worker-*.json")):
        try:
            if time.time() - path.stat().st_mtime > STATS_STALE_AFTER:
                continue
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out


def queue_counts(cfg: Config) -> tuple[int, int, int]:
    """(messages, recipients, held messages) over every spool shard."""
    messages = recipients = held = 0
    for spool in open_all(cfg.spool_dir):
        try:
            m, r = spool.counts()
            messages += m
            recipients += r
            row = spool.conn.execute("SELECT COUNT(*) FROM messages WHERE held=1").fetchone()
            held += int(row[0])
        finally:
            spool.close()
    return messages, recipients, held


class _Collector:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def collect(self) -> Iterator[Metric]:
        workers = read_worker_stats(self.cfg)

        def total(key: str) -> float:
            return float(sum(int(w.get(key, 0)) for w in workers))  # type: ignore[call-overload]

        yield GaugeMetricFamily("hayate_workers", "Worker processes running", value=len(workers))
        for key, text in (
            ("accepted", "Messages accepted into the queue"),
            ("delivered", "Recipients delivered"),
            ("deferred", "Delivery attempts deferred"),
            ("bounced", "Recipients bounced"),
            ("dsns", "Delivery status notifications sent"),
            ("held", "Messages moved to the hold (shunt) state"),
        ):
            yield CounterMetricFamily(f"hayate_{key}", text, value=total(key))
        yield GaugeMetricFamily("hayate_active_recipients", "Recipients in the active window",
                                value=total("active"))
        messages, recipients, held = queue_counts(self.cfg)
        yield GaugeMetricFamily("hayate_queue_messages", "Messages in the queue", value=messages)
        yield GaugeMetricFamily("hayate_queue_recipients", "Recipients in the queue",
                                value=recipients)
        yield GaugeMetricFamily("hayate_queue_held", "Held messages", value=held)


def build_app(
    cfg: Config,
    store: StoreAccess | None = None,
    bound_ports: Mapping[str, int] | None = None,
    account_settings: AccountSettings | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The app; ``bound_ports`` are the listeners' real ports (for autoconfig answers)."""
    app = FastAPI(title="Hayate", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)
    registry = CollectorRegistry()
    registry.register(_Collector(cfg))

    @app.get("/health")
    def health() -> JSONResponse:
        workers = read_worker_stats(cfg)
        ok = len(workers) >= 1
        body = {"status": "ok" if ok else "starting", "version": __version__,
                "hostname": cfg.hostname, "workers": len(workers)}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    if cfg.autoconfig.enabled:
        app.include_router(autoconfig_router(cfg, bound_ports))
    settings = account_settings or AccountSettings(plaintext_auth=cfg.mailbox.plaintext_auth)
    app.include_router(account_router(store or StoreAccess(cfg), settings, clock))
    return app


def http_server(app: FastAPI, tls: ssl.SSLContext | None = None) -> uvicorn.Server:
    """uvicorn as Hayate runs it, over TLS with ``tls`` when given. Its own X-Forwarded-*
    handling is off: the handlers that care (``hayate.http.account``) trust those headers only
    from loopback, themselves."""
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", proxy_headers=False,
        ssl_context_factory=None if tls is None else (lambda _config, _default: tls),
    )
    server = uvicorn.Server(config)
    # The worker owns SIGTERM/SIGINT; uvicorn must not replace its handlers.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server


async def start_http_server(
    cfg: Config,
    sock: socket.socket | None,
    store: Store | None = None,
    bound_ports: Mapping[str, int] | None = None,
    tls_sock: socket.socket | None = None,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Serve until cancelled: one app on ``sock`` (plain HTTP) and on ``tls_sock`` (HTTPS with
    ``tls``), either may be None. ``store``: the worker's (else one is opened on first use);
    ``bound_ports``: listener name → the port it really bound."""
    if tls_sock is not None and tls is None:
        raise ValueError("the https listener needs a TLS context")
    access = StoreAccess(cfg, store)
    app = build_app(cfg, access, bound_ports)
    try:
        async with asyncio.TaskGroup() as group:  # one failing stops the other
            if sock is not None:
                group.create_task(http_server(app).serve(sockets=[sock]))
            if tls_sock is not None:
                group.create_task(http_server(app, tls).serve(sockets=[tls_sock]))
    finally:
        await access.close()
