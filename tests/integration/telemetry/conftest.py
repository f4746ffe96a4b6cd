"""Fixtures: in-memory span exporter and metric reader installed as the active telemetry.

The providers are objects handed to `Telemetry`, never the global setters, so tests
can build as many as they like without OpenTelemetry's override warning. The fake
peers and the service key are the jobs tests' (one server per session).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.integration.jobs.conftest import fake, fake_server, jobs, jwk_text  # noqa: F401

from tgworkers.engine.telemetry import recorder as telemetry
from tgworkers.engine.telemetry.recorder import Telemetry


class Otel:
    """The installed telemetry and what it recorded."""

    def __init__(self, *, prometheus: bool = False) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        readers: list[Any] = [self.reader]
        if prometheus:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

            readers.append(PrometheusMetricReader())
        self.meter_provider = MeterProvider(metric_readers=readers)
        self.telemetry = Telemetry(self.tracer_provider, self.meter_provider)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def metrics(self) -> dict[str, list[Any]]:
        """Instrument name → its data points (collected now)."""
        out: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _installed(prometheus: bool) -> Iterator[Otel]:
    otel = Otel(prometheus=prometheus)
    previous = telemetry.install(otel.telemetry)
    try:
        yield otel
    finally:
        telemetry.install(previous)
        otel.close()


@pytest.fixture
def otel() -> Iterator[Otel]:
    """In-memory exporters, active for whatever the test builds after it."""
    yield from _installed(prometheus=False)


@pytest.fixture
def otel_prometheus() -> Iterator[Otel]:
    """As `otel`, plus a Prometheus reader feeding `/metrics`."""
    yield from _installed(prometheus=True)
