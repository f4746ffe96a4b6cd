import {
  type Context,
  context as otelContext,
  isSpanContextValid,
  propagation,
  trace,
} from "@opentelemetry/api";

/**
 * `traceparent` / `tracestate` of the caller's OpenTelemetry context, so the worker's
 * span joins the caller's trace. The registered propagator writes them; without one
 * (an app that set up no SDK propagator) the active span's context is formatted as
 * W3C trace context directly.
 */
export function traceFields(ctx: Context = otelContext.active()): {
  traceparent?: string;
  tracestate?: string;
} {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  if (carrier.traceparent) {
    return { traceparent: carrier.traceparent, tracestate: carrier.tracestate };
  }
  const span = trace.getSpanContext(ctx);
  if (!span || !isSpanContextValid(span)) return {};
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, "0");
  const state = span.traceState?.serialize();
  return {
    traceparent: `00-${span.traceId}-${span.spanId}-${flags}`,
    ...(state ? { tracestate: state } : {}),
  };
}
