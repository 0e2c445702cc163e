"""Prometheus metrics of one app instance (its own registry, so several apps
in one process — tests — do not collide).

- ``xrdid_http_requests_total{method,route,status}``
- ``xrdid_http_request_duration_seconds{method,route}`` (histogram)
- ``xrdid_identify_stage_seconds{stage}`` (histogram: read, preprocess, embed, search)
- ``xrdid_library_references`` and ``xrdid_ready`` (gauges, read at scrape time)
- ``xrdid_identify_processes``: processes computing /identify (0: its threads do)
- ``xrdid_compute_process_deaths_total{pool}``: compute processes (``identify``,
  ``jobs``) that died while computing (killed, out of memory, a crash in C code)

Label values come from bounded sets only, so no client can grow the
registry: ``route`` is the route template (``/references/{reference_id}``),
never the raw path, and ``unmatched`` for paths no route serves; ``method``
is one of the standard methods, and ``other`` for anything else a client
sends (``curl -X M123``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xrdid.identify import StageTimings

# Request latencies from a fast health check to a slow large upload.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

# RFC 9110 methods (and PATCH); any other token a client sends is counted as "other".
STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


def method_label(method: str) -> str:
    return method if method in STANDARD_METHODS else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "xrdid_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "xrdid_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.stages = Histogram(
            "xrdid_identify_stage_seconds",
            "Time per identification stage",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=self.registry,
        )
        self.library_size = Gauge(
            "xrdid_library_references", "References searched by /identify", registry=self.registry
        )
        self.ready = Gauge(
            "xrdid_ready", "1 when model and library are loaded", registry=self.registry
        )
        self.identify_processes = Gauge(
            "xrdid_identify_processes",
            "Processes computing /identify (XRDID_IDENTIFY_PROCESSES; 0: on threads)",
            registry=self.registry,
        )
        self.process_deaths = Counter(
            "xrdid_compute_process_deaths",
            "Compute processes that died while computing, by pool (identify, jobs)",
            ["pool"],
            registry=self.registry,
        )

    def track_library(self, size: Callable[[], float], ready: Callable[[], float]) -> None:
        self.library_size.set_function(size)
        self.ready.set_function(ready)

    def observe_identification(self, timings: StageTimings) -> None:
        self.stages.labels("read").observe(timings.read_ms / 1000.0)
        self.stages.labels("preprocess").observe(timings.preprocess_ms / 1000.0)
        self.stages.labels("embed").observe(timings.embed_ms / 1000.0)
        self.stages.labels("search").observe(timings.search_ms / 1000.0)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Count and time every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = method_label(scope.get("method", ""))
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
