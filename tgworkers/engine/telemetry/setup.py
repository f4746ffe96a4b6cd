"""The process's telemetry providers: built once at start, flushed on exit.

OTLP/HTTP exporters only when an `OTEL_EXPORTER_OTLP_*ENDPOINT` is set, a
Prometheus reader for `/metrics`, nothing at all when `OTEL_SDK_DISABLED` is true.
Tests build in-memory providers and `install()` them instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from opentelemetry import trace

from tgworkers.engine.telemetry.recorder import Telemetry, active, install

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


class TelemetrySettings(msgspec.Struct, frozen=True, kw_only=True):
    """The telemetry layer's settings, mapped from the parsed environment.

    `OTEL_SDK_DISABLED`, `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME`; the
    other `OTEL_*` variables the SDK reads itself.
    """

    sdk_disabled: bool = False
    otlp_endpoint: str | None = None
    service_name: str | None = None


def _endpoint(environ: Mapping[str, str], signal: str, fallback: str | None) -> str | None:
    """The OTLP/HTTP URL of one signal (`traces`, `metrics`), None when not configured."""
    specific = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if specific:
        return specific
    base = (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or fallback or "").rstrip("/")
    return f"{base}/v1/{signal}" if base else None


def setup_telemetry(
    settings: TelemetrySettings,
    environ: Mapping[str, str] | None = None,
    *,
    prometheus: bool = True,
) -> Telemetry:
    """Build the process's providers, set them globally (once) and make them active.

    OTLP/HTTP exporters only when an endpoint is configured; the Prometheus reader
    (for `/metrics`) unless `prometheus` is false; nothing at all when
    `OTEL_SDK_DISABLED` is true.
    """
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415 - set-up only
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

    env = os.environ if environ is None else environ
    if settings.sdk_disabled:
        return active()
    resource = Resource.create({"service.name": settings.service_name or "tgworkers"})
    traces_url = _endpoint(env, "traces", settings.otlp_endpoint)
    metrics_url = _endpoint(env, "metrics", settings.otlp_endpoint)
    tp = _tracer_provider(resource, traces_url) if traces_url else None
    readers = _metric_readers(metrics_url, env, prometheus=prometheus)
    mp = MeterProvider(resource=resource, metric_readers=readers) if readers else None
    if tp is not None and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(tp)  # for libraries using the global one; set once
    telemetry = Telemetry(tp, mp)
    install(telemetry)
    return telemetry


def _tracer_provider(resource: Any, url: str) -> TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    return tp


def _metric_readers(url: str | None, env: Mapping[str, str], *, prometheus: bool) -> list[Any]:
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415

    readers: list[Any] = []
    if url:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )

        interval = int(env.get("OTEL_METRIC_EXPORT_INTERVAL", "") or 15_000)
        exporter = OTLPMetricExporter(endpoint=url)
        readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval))
    if prometheus:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: PLC0415

        readers.append(PrometheusMetricReader())
    return readers


def prometheus_text() -> bytes:
    """`/metrics`: everything registered with prometheus_client's default registry."""
    from prometheus_client import REGISTRY, generate_latest  # noqa: PLC0415

    return generate_latest(REGISTRY)


def shutdown_telemetry(telemetry: Telemetry | None = None) -> None:
    """Flush and stop the providers (SIGTERM path): pending spans and metrics are sent."""
    t = telemetry or active()
    for provider in (t.tracer_provider, t.meter_provider):
        if provider is not None and hasattr(provider, "shutdown"):
            provider.shutdown()
