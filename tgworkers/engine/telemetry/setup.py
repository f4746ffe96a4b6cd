"""The process's telemetry providers: built once at start, flushed on exit.

OTLP/HTTP exporters only when an OTLP endpoint is configured, a Prometheus reader
for `/metrics`, nothing at all when `OTEL_SDK_DISABLED` is true. The values come in
a `TelemetrySettings` the config layer parsed: the engine reads no environment
(tests/unit/test_layering.py). Tests build in-memory providers and `install()` them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from opentelemetry import trace

from tgworkers.engine.telemetry.budget import HISTOGRAM_SAMPLES_PER_S, PROCESS_SPANS_PER_S
from tgworkers.engine.telemetry.recorder import Telemetry, active, install

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


class TelemetrySettings(msgspec.Struct, frozen=True, kw_only=True):
    """The telemetry layer's settings, mapped from the parsed environment.

    `OTEL_SDK_DISABLED`, `OTEL_EXPORTER_OTLP_ENDPOINT` (and its per-signal
    `_TRACES_`/`_METRICS_` forms), `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_SERVICE_NAME`
    and the per-job budgets `TGW_HISTOGRAM_SAMPLES_PER_S`, `TGW_PROCESS_SPANS_PER_S`;
    the SDK reads the other `OTEL_*` variables (sampler, protocol, timeout) itself.
    """

    sdk_disabled: bool = False
    otlp_endpoint: str | None = None
    traces_endpoint: str | None = None
    metrics_endpoint: str | None = None
    metric_export_interval_ms: int = 15_000
    service_name: str | None = None
    histogram_samples_per_s: int = HISTOGRAM_SAMPLES_PER_S
    process_spans_per_s: int = PROCESS_SPANS_PER_S

    def endpoint(self, signal: str) -> str | None:
        """The OTLP/HTTP URL of one signal (`traces`, `metrics`), None when not configured."""
        specific = self.traces_endpoint if signal == "traces" else self.metrics_endpoint
        if specific:
            return specific
        base = (self.otlp_endpoint or "").rstrip("/")
        return f"{base}/v1/{signal}" if base else None


def setup_telemetry(settings: TelemetrySettings, *, prometheus: bool = True) -> Telemetry:
    """Build the process's providers, set them globally (once) and make them active.

    OTLP/HTTP exporters only when an endpoint is configured; the Prometheus reader
    (for `/metrics`) unless `prometheus` is false; nothing at all when
    `OTEL_SDK_DISABLED` is true.
    """
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415 - set-up only
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

    if settings.sdk_disabled:
        return active()
    resource = Resource.create({"service.name": settings.service_name or "tgworkers"})
    traces_url = settings.endpoint("traces")
    tp = _tracer_provider(resource, traces_url) if traces_url else None
    readers = _metric_readers(settings, prometheus=prometheus)
    mp = MeterProvider(resource=resource, metric_readers=readers) if readers else None
    if tp is not None and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(tp)  # for libraries using the global one; set once
    telemetry = Telemetry(
        tp, mp, histogram_samples_per_s=settings.histogram_samples_per_s,
        process_spans_per_s=settings.process_spans_per_s,
    )  # fmt: skip
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


def _metric_readers(settings: TelemetrySettings, *, prometheus: bool) -> list[Any]:
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415

    readers: list[Any] = []
    if url := settings.endpoint("metrics"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )

        interval = settings.metric_export_interval_ms
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
