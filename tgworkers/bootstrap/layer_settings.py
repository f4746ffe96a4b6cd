"""Each layer's settings, mapped from the one parsed `Settings`.

The engine and the HTTP server import nothing of `tgworkers.config`: the launcher
hands the telemetry providers a `TelemetrySettings` and the server an
`HttpSettings`, both built here from the same value.
"""

from __future__ import annotations

from tgworkers.config import Settings
from tgworkers.engine.telemetry.setup import TelemetrySettings
from tgworkers.http.settings import HttpSettings


def telemetry_settings(settings: Settings) -> TelemetrySettings:
    """The telemetry layer's settings, mapped from the parsed environment."""
    return TelemetrySettings(
        sdk_disabled=settings.otel_sdk_disabled,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
        traces_endpoint=settings.otel_exporter_otlp_traces_endpoint,
        metrics_endpoint=settings.otel_exporter_otlp_metrics_endpoint,
        metric_export_interval_ms=settings.otel_metric_export_interval,
        service_name=settings.otel_service_name,
        histogram_samples_per_s=settings.histogram_samples_per_s,
        process_spans_per_s=settings.process_spans_per_s,
    )


def http_settings(settings: Settings) -> HttpSettings:
    """The HTTP server's settings, mapped from the parsed environment."""
    return HttpSettings(
        port=settings.port,
        service_name=settings.service_name,
        admin_token=settings.admin_token,
        admin_readonly_token=settings.admin_readonly_token,
        admin_trusted_jwks=settings.admin_trusted_jwks,
        admin_jwt_max_lifetime_s=settings.admin_jwt_max_lifetime_s,
        admin_jwt_issuers=settings.admin_jwt_issuers,
        metrics_token=settings.metrics_token,
        console_session_secret=settings.console_session_secret,
        console_session_ttl_s=settings.console_session_ttl_s,
        trace_url_template=settings.trace_url_template,
    )
