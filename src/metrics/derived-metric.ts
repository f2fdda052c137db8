/**
 * A Prometheus metric whose samples are computed at scrape time instead of being incremented in place.
 *
 * The supervisor never sees individual connections: it receives cumulative snapshots from its children and must
 * publish "retired totals + latest snapshot of every live child". prom-client's Counter and Histogram can only be
 * incremented or observed (a histogram's buckets cannot be set), so these metrics implement the small contract
 * prom-client's Registry actually calls (name, type, help, aggregator, get(), reset()) and build their samples
 * from the aggregator's state on every scrape. Rendering, escaping and the content type stay prom-client's.
 */
import type { Metric, Registry } from 'prom-client'

export type DerivedType = 'counter' | 'gauge' | 'histogram'

export interface Sample {
  /** Set for histogram series (`_bucket`, `_sum`, `_count`); defaults to the metric name. */
  metricName?: string
  labels: Record<string, string | number>
  value: number
}

export class DerivedMetric {
  readonly name: string
  readonly help: string
  readonly type: DerivedType
  readonly labelNames: readonly string[]
  /** How prom-client's cluster AggregatorRegistry would merge workers; we do not use it, but it reads the field. */
  readonly aggregator = 'sum'
  readonly #samples: () => Sample[]

  constructor(opts: {
    name: string
    help: string
    type: DerivedType
    labelNames: readonly string[]
    samples: () => Sample[]
  }) {
    this.name = opts.name
    this.help = opts.help
    this.type = opts.type
    this.labelNames = opts.labelNames
    this.#samples = opts.samples
  }

  /** Registers on `registry`. The cast is needed because prom-client types Metric as its four built-in classes. */
  register(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric)
    return this
  }

  async get(): Promise<{ name: string; help: string; type: DerivedType; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.#samples() }
  }

  /** Registry.resetMetrics() calls this. Derived values have no state of their own, so there is nothing to reset. */
  reset(): void {}
}

/** The series of one histogram (buckets, sum, count) for one label set. */
export function histogramSamples(
  name: string,
  labels: Record<string, string>,
  buckets: { le: number | '+Inf'; value: number }[],
  sum: number,
  count: number
): Sample[] {
  const out: Sample[] = buckets.map((b) => ({
    metricName: `${name}_bucket`,
    labels: { ...labels, le: b.le },
    value: b.value,
  }))
  out.push({ metricName: `${name}_sum`, labels, value: sum })
  out.push({ metricName: `${name}_count`, labels, value: count })
  return out
}
