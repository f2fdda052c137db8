import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MetricsAggregator } from '../../../src/metrics/aggregator.js'
import { DURATION_BUCKETS, OUTCOMES, RouteStats } from '../../../src/metrics/route-stats.js'
import { parseSamples, sample, sampleKey } from '../../helpers/prom-text.js'

const ACCEPTED = 'mysqlgw_connections_accepted_total'
const CLOSED = 'mysqlgw_connections_closed_total'
const OPEN = 'mysqlgw_connections_open'
const BYTES = 'mysqlgw_bytes_total'
const HANDSHAKE = 'mysqlgw_handshake_duration_seconds'

function aggregator(): MetricsAggregator {
  // Process metrics are the supervisor's own and would only add noise to exact-value assertions.
  return new MetricsAggregator({ processMetrics: false })
}

async function scrape(a: MetricsAggregator): Promise<Map<string, number>> {
  return parseSamples(await a.metrics())
}

/** A route's stats after `n` connections: all closed ok except one still open. */
function statsWith(n: number): RouteStats {
  const s = new RouteStats()
  for (let i = 0; i < n; i++) s.accepted()
  for (let i = 0; i < n - 1; i++) s.closed('ok')
  s.addBytesFromClient(100 * n)
  s.addBytesFromBackend(1000 * n)
  return s
}

describe('MetricsAggregator', () => {
  it('publishes the exact values of a report, with every outcome initialised', async () => {
    const a = aggregator()
    const s = statsWith(3)
    s.tlsEstablished('TLSv1.3')
    s.tlsEstablished('TLSv1.2')
    s.tlsEstablished('TLSv1.3')
    s.gatewayError(1045)
    s.unmatchedSni()
    a.report('child-1', { 'tenant-a': s.snapshot() })

    const m = await scrape(a)
    assert.equal(sample(m, ACCEPTED, { route: 'tenant-a' }), 3)
    assert.equal(sample(m, CLOSED, { route: 'tenant-a', outcome: 'ok' }), 2)
    for (const outcome of OUTCOMES.filter((o) => o !== 'ok')) {
      assert.equal(sample(m, CLOSED, { route: 'tenant-a', outcome }), 0, outcome)
    }
    assert.equal(sample(m, OPEN, { route: 'tenant-a' }), 1)
    assert.equal(sample(m, BYTES, { route: 'tenant-a', direction: 'client_to_backend' }), 300)
    assert.equal(sample(m, BYTES, { route: 'tenant-a', direction: 'backend_to_client' }), 3000)
    assert.equal(sample(m, 'mysqlgw_tls_handshakes_total', { route: 'tenant-a', version: 'TLSv1.3' }), 2)
    assert.equal(sample(m, 'mysqlgw_tls_handshakes_total', { route: 'tenant-a', version: 'TLSv1.2' }), 1)
    assert.equal(sample(m, 'mysqlgw_gateway_errors_total', { route: 'tenant-a', code: '1045' }), 1)
    assert.equal(sample(m, 'mysqlgw_sni_unmatched_total', { route: 'tenant-a' }), 1)
    assert.equal(sample(m, 'mysqlgw_child_restarts_total', { route: 'tenant-a' }), 0)
  })

  it('treats reports as cumulative: a newer snapshot of the same child replaces the older one', async () => {
    const a = aggregator()
    const s = statsWith(2)
    a.report('child-1', { 'tenant-a': s.snapshot() })
    s.accepted()
    a.report('child-1', { 'tenant-a': s.snapshot() })

    const m = await scrape(a)
    assert.equal(sample(m, ACCEPTED, { route: 'tenant-a' }), 3)
    assert.equal(sample(m, OPEN, { route: 'tenant-a' }), 2)
  })

  it('stays monotonic when a child is retired and its replacement reports from zero', async () => {
    const a = aggregator()
    a.report('child-1', { 'tenant-a': statsWith(5).snapshot() })
    const before = await scrape(a)

    a.retire('child-1')
    const between = await scrape(a)
    a.report('child-2', { 'tenant-a': new RouteStats().snapshot() })
    const restarted = await scrape(a)
    a.report('child-2', { 'tenant-a': statsWith(2).snapshot() })
    const after = await scrape(a)

    for (const m of [between, restarted]) {
      assert.equal(sample(m, ACCEPTED, { route: 'tenant-a' }), 5)
      assert.equal(sample(m, CLOSED, { route: 'tenant-a', outcome: 'ok' }), 4)
      assert.equal(sample(m, BYTES, { route: 'tenant-a', direction: 'client_to_backend' }), 500)
    }
    // The dead child's open connection is gone with it; the gauge is a level, not a total.
    assert.equal(sample(between, OPEN, { route: 'tenant-a' }), 0)
    assert.equal(sample(after, ACCEPTED, { route: 'tenant-a' }), 7)
    assert.equal(sample(after, CLOSED, { route: 'tenant-a', outcome: 'ok' }), 5)
    assert.equal(sample(after, OPEN, { route: 'tenant-a' }), 1)
    for (const [key, value] of before) {
      if (key.startsWith(OPEN)) continue
      assert.ok(after.get(key)! >= value, `${key} went down: ${value} -> ${after.get(key)}`)
    }
  })

  it('ignores a report that arrives after its child was retired', async () => {
    const a = aggregator()
    const s = statsWith(4)
    a.report('child-1', { 'tenant-a': s.snapshot() })
    a.retire('child-1')
    // e.g. a 'stats' reply racing the exit event: already counted in the retired totals.
    a.report('child-1', { 'tenant-a': s.snapshot() })

    assert.equal(sample(await scrape(a), ACCEPTED, { route: 'tenant-a' }), 4)
  })

  it('keeps the routes of one child apart and retires them together', async () => {
    const a = aggregator()
    const tenantA = statsWith(3)
    const tenantB = statsWith(1)
    tenantB.closed('auth_failed')
    a.report('shared-listener', { 'tenant-a': tenantA.snapshot(), 'tenant-b': tenantB.snapshot() })

    let m = await scrape(a)
    assert.equal(sample(m, ACCEPTED, { route: 'tenant-a' }), 3)
    assert.equal(sample(m, ACCEPTED, { route: 'tenant-b' }), 1)
    assert.equal(sample(m, CLOSED, { route: 'tenant-a', outcome: 'auth_failed' }), 0)
    assert.equal(sample(m, CLOSED, { route: 'tenant-b', outcome: 'auth_failed' }), 1)

    a.retire('shared-listener')
    m = await scrape(a)
    assert.equal(sample(m, ACCEPTED, { route: 'tenant-a' }), 3)
    assert.equal(sample(m, ACCEPTED, { route: 'tenant-b' }), 1)
    assert.equal(sample(m, OPEN, { route: 'tenant-a' }), 0)
  })

  it('sums a route served by two live children (old one draining, new one serving)', async () => {
    const a = aggregator()
    a.report('old', { 'tenant-a': statsWith(4).snapshot() })
    a.report('new', { 'tenant-a': statsWith(2).snapshot() })

    const m = await scrape(a)
    assert.equal(sample(m, ACCEPTED, { route: 'tenant-a' }), 6)
    assert.equal(sample(m, OPEN, { route: 'tenant-a' }), 2)
  })

  it('renders histogram buckets cumulatively, with +Inf equal to the count', async () => {
    const a = aggregator()
    const one = new RouteStats()
    for (const seconds of [0.0005, 0.003, 0.003, 0.2]) one.handshakeDone(seconds)
    const two = new RouteStats()
    // Above the last bound: lands only in +Inf.
    two.handshakeDone(20)
    a.report('child-1', { 'tenant-a': one.snapshot() })
    a.report('child-2', { 'tenant-a': two.snapshot() })

    const m = await scrape(a)
    const bucket = (le: number | string): number => sample(m, `${HANDSHAKE}_bucket`, { route: 'tenant-a', le })
    const expected: Record<string, number> = { 0.001: 1, 0.0025: 1, 0.005: 3, 0.1: 3, 0.25: 4, 10: 4 }
    for (const [le, count] of Object.entries(expected)) assert.equal(bucket(le), count, `le=${le}`)
    let previous = 0
    for (const le of DURATION_BUCKETS) {
      assert.ok(bucket(le) >= previous, `bucket le=${le} is cumulative`)
      previous = bucket(le)
    }
    assert.equal(bucket('+Inf'), 5)
    assert.equal(sample(m, `${HANDSHAKE}_count`, { route: 'tenant-a' }), 5)
    assert.ok(Math.abs(sample(m, `${HANDSHAKE}_sum`, { route: 'tenant-a' }) - 20.2065) < 1e-9)
    // The other histogram exists for the route, empty.
    assert.equal(sample(m, 'mysqlgw_backend_connect_duration_seconds_bucket', { route: 'tenant-a', le: '+Inf' }), 0)
  })

  it('counts restarts and reloads, and records the last successful reload time', async () => {
    const a = aggregator()
    let m = await scrape(a)
    assert.equal(sample(m, 'mysqlgw_config_reloads_total', { result: 'applied' }), 0)
    assert.equal(sample(m, 'mysqlgw_config_reloads_total', { result: 'rejected' }), 0)

    const t0 = Date.now() / 1000
    a.reload('rejected')
    a.reload('applied')
    a.reload('rejected')
    a.childRestarted('tenant-a')
    a.childRestarted('tenant-a')
    m = await scrape(a)
    assert.equal(sample(m, 'mysqlgw_config_reloads_total', { result: 'applied' }), 1)
    assert.equal(sample(m, 'mysqlgw_config_reloads_total', { result: 'rejected' }), 2)
    assert.equal(sample(m, 'mysqlgw_child_restarts_total', { route: 'tenant-a' }), 2)
    const last = sample(m, 'mysqlgw_config_last_reload_success_timestamp_seconds')
    assert.ok(last >= t0 && last <= Date.now() / 1000 + 1, `timestamp ${last}`)
  })

  it('drops the gauges of a removed route but keeps its counters', async () => {
    const a = aggregator()
    a.report('child-1', { 'tenant-a': statsWith(3).snapshot(), 'tenant-b': statsWith(1).snapshot() })
    a.certNotAfter('tenant-a', 1_900_000_000)
    a.certNotAfter('tenant-b', 1_800_000_000)
    let m = await scrape(a)
    assert.equal(sample(m, 'mysqlgw_cert_not_after_timestamp_seconds', { route: 'tenant-a' }), 1_900_000_000)

    a.routeRemoved('tenant-a')
    m = await scrape(a)
    assert.equal(m.has(sampleKey(OPEN, { route: 'tenant-a' })), false)
    assert.equal(m.has(sampleKey('mysqlgw_cert_not_after_timestamp_seconds', { route: 'tenant-a' })), false)
    assert.equal(sample(m, ACCEPTED, { route: 'tenant-a' }), 3)
    assert.equal(sample(m, OPEN, { route: 'tenant-b' }), 1)
    assert.equal(sample(m, 'mysqlgw_cert_not_after_timestamp_seconds', { route: 'tenant-b' }), 1_800_000_000)

    // The route comes back in a new child: its gauge returns, counters continue from where they were.
    a.retire('child-1')
    a.report('child-2', { 'tenant-a': statsWith(1).snapshot() })
    m = await scrape(a)
    assert.equal(sample(m, OPEN, { route: 'tenant-a' }), 1)
    assert.equal(sample(m, ACCEPTED, { route: 'tenant-a' }), 4)
  })

  it('removes the certificate series when a route stops presenting one', async () => {
    const a = aggregator()
    a.certNotAfter('tenant-a', 1_900_000_000)
    a.certNotAfter('tenant-a', undefined)
    const m = await scrape(a)
    assert.equal(m.has(sampleKey('mysqlgw_cert_not_after_timestamp_seconds', { route: 'tenant-a' })), false)
  })
})
