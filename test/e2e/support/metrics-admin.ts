/**
 * Shared by the metrics/admin end-to-end tests: a YAML writer for routes to any backend with their own
 * certificate, scrapes of /metrics read back as numbers, and exact counter deltas per route.
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { TestEnv } from '../../helpers/env.js'
import { mintLeaf } from '../../helpers/certs.js'
import { parseSamples, sample } from '../../helpers/prom-text.js'
import { waitFor } from '../../helpers/wait.js'
import type { GatewayRun } from './gateway-run.js'

export interface MaRoute {
  name: string
  port: number
  backendPort: number
  cert: string
  key: string
}

export interface MaConfig {
  routes: MaRoute[]
  adminPort: number
  logLevel?: 'trace' | 'debug' | 'info'
  drainTimeout?: string
}

/** Every route requires client TLS and reaches its backend over plain loopback TCP. */
export function metricsYaml(cfg: MaConfig): string {
  const lines = [
    `log: { level: ${cfg.logLevel ?? 'info'} }`,
    `admin: { listen: 127.0.0.1:${cfg.adminPort} }`,
    'defaults:',
    '  tls: { mode: required }',
    '  backendTls: { mode: disabled }',
    '  timeouts: { connect: 2s, handshake: 5s }',
    `  drainTimeout: ${cfg.drainTimeout ?? '2s'}`,
    'routes:',
  ]
  for (const r of cfg.routes) {
    lines.push(
      `  - name: ${r.name}`,
      `    listen: 127.0.0.1:${r.port}`,
      `    backend: 127.0.0.1:${r.backendPort}`,
      `    tls: { cert: ${JSON.stringify(r.cert)}, key: ${JSON.stringify(r.key)} }`
    )
  }
  return `${lines.join('\n')}\n`
}

export interface RouteCert {
  cert: string
  key: string
  /** CN, distinct per route so /routes and the metric can be matched to the right file. */
  cn: string
  notAfterUnix: number
  notAfterIso: string
}

/** A server certificate valid for 127.0.0.1 with its own CN and lifetime (so routes differ in notAfter). */
export async function routeCert(env: TestEnv, cn: string, days: number): Promise<RouteCert> {
  const leaf = await mintLeaf(env.pki, cn, { sans: ['IP:127.0.0.1', 'DNS:localhost'], days })
  const x509 = new X509Certificate(readFileSync(leaf.cert))
  const ms = Date.parse(x509.validTo)
  return { cert: leaf.cert, key: leaf.key, cn, notAfterUnix: ms / 1000, notAfterIso: new Date(ms).toISOString() }
}

export type Samples = Map<string, number>

export async function scrape(gw: GatewayRun): Promise<Samples> {
  const res = await gw.admin('/metrics')
  assert.equal(res.status, 200, `/metrics: ${res.body}`)
  return parseSamples(res.body)
}

/** Value of one series, 0 when absent (a labelled series appears on its first increment). */
export function val(s: Samples, name: string, labels: Record<string, string> = {}): number {
  try {
    return sample(s, name, labels)
  } catch {
    return 0
  }
}

const EVENT_COUNTERS = [
  'mysqlgw_connections_accepted_total',
  'mysqlgw_connections_closed_total',
  'mysqlgw_gateway_errors_total',
  'mysqlgw_tls_handshakes_total',
  'mysqlgw_sni_unmatched_total',
  'mysqlgw_child_restarts_total',
  'mysqlgw_handshake_duration_seconds_count',
]

function deltas(before: Samples, after: Samples, route: string, names?: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    if (!key.includes(`route="${route}"`)) continue
    if (names && !names.includes(key.slice(0, key.indexOf('{')))) continue
    const d = (after.get(key) ?? 0) - (before.get(key) ?? 0)
    if (d !== 0) out[key] = Math.round(d * 1e6) / 1e6
  }
  return out
}

/** Non-zero changes of the per-connection event counters of `route` (one per connection event). */
export function eventDeltas(before: Samples, after: Samples, route: string): Record<string, number> {
  return deltas(before, after, route, EVENT_COUNTERS)
}

/** Non-zero changes of every series labelled with `route` (bytes and histograms included). */
export function anyDeltas(before: Samples, after: Samples, route: string): Record<string, number> {
  return deltas(before, after, route)
}

/** Scrapes until `ready(samples)` holds (a session's close is counted a moment after the client sees it). */
export function scrapeUntil(gw: GatewayRun, ready: (s: Samples) => boolean, what: string, timeoutMs = 5_000): Promise<Samples> {
  return waitFor(
    async () => {
      const s = await scrape(gw)
      return ready(s) ? s : undefined
    },
    { timeoutMs, intervalMs: 50, what }
  )
}
