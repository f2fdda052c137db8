/**
 * Arithmetic on route stats snapshots: the supervisor adds the snapshots of several children (live ones and
 * retired ones) to get one cumulative value per route.
 */
import { DURATION_BUCKETS, emptySnapshot, type HistogramSnapshot, type RouteStatsSnapshot } from './route-stats.js'

/** Everything in a snapshot that only grows. `open` is left out: it is a level, meaningless once a child exits. */
export type RouteTotals = Omit<RouteStatsSnapshot, 'open'>

export function emptyTotals(): RouteTotals {
  const { open: _open, ...totals } = emptySnapshot()
  return totals
}

/** Adds `from` into `into` (mutates `into`). */
export function addTotals(into: RouteTotals, from: RouteTotals): void {
  into.accepted += from.accepted
  addRecord(into.closed, from.closed)
  addHistogram(into.handshakeSeconds, from.handshakeSeconds)
  addHistogram(into.backendConnectSeconds, from.backendConnectSeconds)
  addRecord(into.tlsHandshakes, from.tlsHandshakes)
  into.bytesFromClient += from.bytesFromClient
  into.bytesFromBackend += from.bytesFromBackend
  addRecord(into.gatewayErrors, from.gatewayErrors)
  into.unmatchedSni += from.unmatchedSni
}

function addRecord(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + n
}

function addHistogram(into: HistogramSnapshot, from: HistogramSnapshot): void {
  // Both sides come from the same build, so the bucket layouts match; indexing by `into` keeps a malformed
  // snapshot from growing the array.
  for (let i = 0; i < into.counts.length; i++) into.counts[i]! += from.counts[i] ?? 0
  into.sum += from.sum
  into.count += from.count
}

/** Prometheus histogram samples are cumulative per upper bound; the snapshot keeps per-bucket counts. */
export function cumulativeBuckets(h: HistogramSnapshot): { le: number | '+Inf'; value: number }[] {
  const out: { le: number | '+Inf'; value: number }[] = []
  let running = 0
  DURATION_BUCKETS.forEach((le, i) => {
    running += h.counts[i] ?? 0
    out.push({ le, value: running })
  })
  // +Inf is the total count by definition, whatever the trailing bucket says.
  out.push({ le: '+Inf', value: h.count })
  return out
}
