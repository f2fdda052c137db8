/**
 * The README's metrics table is the operators' reference; this keeps it equal to what the registry exports,
 * in both directions (a metric added without a row fails, and so does a row for a metric that no longer exists).
 */
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { METRIC_PREFIX, MetricsAggregator } from '../../../src/metrics/aggregator.js'
import { RouteStats } from '../../../src/metrics/route-stats.js'

// Compiled to dist/test/unit/metrics/, four levels below the repository root.
const README = new URL('../../../../README.md', import.meta.url)

interface Row {
  type: string
  labels: string[]
}

function readmeTable(): Map<string, Row> {
  const text = readFileSync(README, 'utf8')
  const start = text.indexOf('<!-- section:metrics -->')
  const end = text.indexOf('<!-- /section:metrics -->')
  assert.ok(start !== -1 && end > start, 'README has the metrics section markers')
  const rows = new Map<string, Row>()
  for (const line of text.slice(start, end).split('\n')) {
    const m = /^\| `(mysqlgw_\w+)` \| (\w+) \| ([^|]*) \|/.exec(line)
    if (!m) continue
    assert.ok(!rows.has(m[1]!), `README lists ${m[1]} twice`)
    const labels = [...m[3]!.matchAll(/`(\w+)`/g)].map((l) => l[1]!).sort()
    rows.set(m[1]!, { type: m[2]!, labels })
  }
  return rows
}

/** Names of prom-client's default process metrics: documented by one sentence, not one row each. */
function defaultMetricNames(): Set<string> {
  const reference = new Registry()
  collectDefaultMetrics({ register: reference, prefix: METRIC_PREFIX })
  return new Set(reference.getMetricsAsArray().map((m) => m.name))
}

/** What the registry exports once every metric has at least one series, labels read from those series. */
async function registryTable(): Promise<Map<string, Row>> {
  const a = new MetricsAggregator()
  const s = new RouteStats()
  s.accepted()
  s.handshakeDone(0.01)
  s.backendConnected(0.001)
  s.tlsEstablished('TLSv1.3')
  s.gatewayError(1045)
  s.closed('auth_failed')
  a.report('child-1', { 'tenant-a': s.snapshot() })
  a.childRestarted('tenant-a')
  a.reload('applied')
  a.certNotAfter('tenant-a', 1_900_000_000)

  const defaults = defaultMetricNames()
  const rows = new Map<string, Row>()
  for (const metric of await a.registry.getMetricsAsJSON()) {
    if (defaults.has(metric.name)) continue
    assert.ok(metric.values.length > 0, `${metric.name} has a series to read its labels from`)
    const labels = new Set(metric.values.flatMap((v) => Object.keys(v.labels)))
    // `le` belongs to every histogram bucket series; the table lists the labels an operator filters on.
    labels.delete('le')
    rows.set(metric.name, { type: String(metric.type), labels: [...labels].sort() })
  }
  return rows
}

it('README metrics table matches the registry (names, types, labels)', async () => {
  const readme = readmeTable()
  const registry = await registryTable()
  assert.ok(registry.size > 0)
  for (const name of registry.keys()) assert.ok(readme.has(name), `${name} is exported but missing from README`)
  for (const name of readme.keys()) assert.ok(registry.has(name), `${name} is in README but not exported`)
  for (const [name, row] of registry) assert.deepEqual(readme.get(name), row, `README row of ${name}`)
})

it('README mentions the default process metrics it does not list one by one', async () => {
  const text = readFileSync(README, 'utf8')
  const section = text.slice(text.indexOf('<!-- section:metrics -->'), text.indexOf('<!-- /section:metrics -->'))
  const exported = new Set((await new MetricsAggregator().registry.getMetricsAsJSON()).map((m) => m.name))
  for (const name of section.match(/`mysqlgw_(process|nodejs)_\w+`/g) ?? []) {
    assert.ok(exported.has(name.slice(1, -1)), `${name} named in README is exported`)
  }
  assert.ok(defaultMetricNames().has(`${METRIC_PREFIX}process_cpu_seconds_total`))
})
