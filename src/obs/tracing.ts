/**
 * Traces (§9): a root span per generation lifecycle with child spans encode / transfer / decode /
 * verify / activate, and a span per query tagged `generation_id` and `as_of_commit_seq`.
 * Export is configurable: none (default: the API's no-op tracer), console, in-memory (tests), or
 * OTLP/HTTP when a user points fsmesh at a collector (needs @opentelemetry/exporter-trace-otlp-http).
 * Parent/child links are passed explicitly, so no async context manager is required.
 */
import { context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';

export const TRACER_NAME = 'fsmesh';

export function tracer() {
  return trace.getTracer(TRACER_NAME);
}

export type TraceExport = 'none' | 'console' | 'memory' | { otlp_url: string };

/** Install a global tracer provider; returns the in-memory exporter when asked for one. */
export async function configureTracing(
  mode: TraceExport,
): Promise<{ exporter?: unknown; shutdown(): Promise<void> }> {
  if (mode === 'none') return { shutdown: async () => {} };
  const sdk = await import('@opentelemetry/sdk-trace-base');
  let exporter: any;
  if (mode === 'console') exporter = new sdk.ConsoleSpanExporter();
  else if (mode === 'memory') exporter = new sdk.InMemorySpanExporter();
  else {
    let otlp: any;
    try {
      otlp = await import(String('@opentelemetry/exporter-trace-otlp-http'));
    } catch {
      throw new Error(
        'OTLP export needs the package @opentelemetry/exporter-trace-otlp-http: npm install it next to fsmesh',
      );
    }
    exporter = new otlp.OTLPTraceExporter({ url: mode.otlp_url });
  }
  const provider = new sdk.BasicTracerProvider({
    spanProcessors: [
      mode === 'memory' || mode === 'console'
        ? new sdk.SimpleSpanProcessor(exporter)
        : new sdk.BatchSpanProcessor(exporter),
    ],
  });
  trace.setGlobalTracerProvider(provider);
  return { exporter, shutdown: () => provider.shutdown() };
}

/** A generation lifecycle trace: one root span, named child spans under it. */
export class LifecycleTrace {
  readonly root: Span;
  constructor(generation_id: string, attrs: Record<string, string | number> = {}) {
    this.root = tracer().startSpan('generation.lifecycle', { attributes: { generation_id, ...attrs } });
  }
  /** Run `fn` inside child span `name` (encode, transfer, decode, verify, activate). */
  async child<T>(
    name: 'encode' | 'transfer' | 'decode' | 'verify' | 'activate',
    fn: () => Promise<T>,
    attrs: Record<string, string | number> = {},
  ): Promise<T> {
    const span = tracer().startSpan(name, { attributes: attrs }, trace.setSpan(context.active(), this.root));
    try {
      return await fn();
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  }
  end(outcome: string, attrs: Record<string, string | number> = {}): void {
    this.root.setAttributes({ outcome, ...attrs });
    if (outcome !== 'active') this.root.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
    this.root.end();
  }
}

export function querySpan(attrs: {
  mode: string;
  read_mode: string;
  as_of_commit_seq?: number;
  min_commit_seq?: number;
}): Span {
  return tracer().startSpan('query', {
    attributes: {
      mode: attrs.mode,
      read_mode: attrs.read_mode,
      as_of_commit_seq: attrs.as_of_commit_seq ?? -1,
      ...(attrs.min_commit_seq !== undefined ? { min_commit_seq: attrs.min_commit_seq } : {}),
    },
  });
}
