/**
 * Traces (§9): a root span per generation lifecycle with child spans encode / transfer / decode /
 * verify / activate, and a span per query tagged `generation_id` and `as_of_commit_seq`.
 * Export is configurable: none (default: the API's no-op tracer), console, in-memory (tests), or
 * OTLP/HTTP when a user points fsmesh at a collector (needs @opentelemetry/exporter-trace-otlp-http).
 * Parent/child links are passed explicitly, so no async context manager is required.
 */
import { context, INVALID_SPAN_CONTEXT, type Span, SpanStatusCode, trace } from '@opentelemetry/api';

export const TRACER_NAME = 'fsmesh';

/**
 * Query spans are sampled (lifecycle spans never are: a few per generation). The sampler is a
 * deterministic accumulator, not a random draw, so the simulator's traces stay reproducible, and an
 * unsampled query costs one addition: no SDK span, no trace id (the SDK's own ratio sampler still
 * spends ~1 µs per span generating ids; measured in bench/obs.ts).
 */
let querySampleRatio = 1;
let querySampleCredit = 0;
const UNSAMPLED: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Fraction of queries that get a span, in [0, 1]. Default 1 (every query). */
export function setQuerySampleRatio(ratio: number): void {
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`query sample ratio must be in [0, 1], got ${ratio}`);
  querySampleRatio = ratio;
  querySampleCredit = 0;
}

/** Default query sampling when exporting to a collector: 1 query in 10. */
export const DEFAULT_OTLP_QUERY_SAMPLE_RATIO = 0.1;

export function tracer() {
  return trace.getTracer(TRACER_NAME);
}

export type TraceExport = 'none' | 'console' | 'memory' | { otlp_url: string };

/** Install a global tracer provider; returns the in-memory exporter when asked for one. */
export async function configureTracing(
  mode: TraceExport,
  opts: { query_sample_ratio?: number } = {},
): Promise<{ exporter?: unknown; shutdown(): Promise<void> }> {
  if (mode === 'none') return { shutdown: async () => {} };
  // A collector gets 1 query in 10 unless told otherwise; console and memory (debugging, tests)
  // get every query.
  setQuerySampleRatio(
    opts.query_sample_ratio ?? (typeof mode === 'object' ? DEFAULT_OTLP_QUERY_SAMPLE_RATIO : 1),
  );
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
  // The API keeps the first global provider and ignores later ones: replace it explicitly.
  trace.disable();
  trace.setGlobalTracerProvider(provider);
  return {
    exporter,
    shutdown: async () => {
      setQuerySampleRatio(1);
      await provider.shutdown();
    },
  };
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
  querySampleCredit += querySampleRatio;
  if (querySampleCredit < 1) return UNSAMPLED;
  querySampleCredit -= 1;
  return tracer().startSpan('query', {
    attributes: {
      mode: attrs.mode,
      read_mode: attrs.read_mode,
      as_of_commit_seq: attrs.as_of_commit_seq ?? -1,
      ...(attrs.min_commit_seq !== undefined ? { min_commit_seq: attrs.min_commit_seq } : {}),
    },
  });
}
