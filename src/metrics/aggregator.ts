/**
 * MetricsAggregator: the supervisor's one Prometheus registry for every route, although each listener runs in
 * its own child process.
 *
 * Children keep plain cumulative counters (route-stats.ts) and the supervisor feeds their latest snapshots in
 * with report(). A counter's published value is
 *
 *     retired totals (children that exited) + sum of the latest snapshot of every live child
 *
 * so when a child dies and its replacement starts counting from zero, nothing published ever goes down.
 * Connection metrics are derived at scrape time (derived-metric.ts); the supervisor's own events (restarts,
 * reloads, certificate expiry) are ordinary prom-client metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import { OUTCOMES, type HistogramSnapshot, type RouteStatsSnapshot } from './route-stats.js'
import { DerivedMetric, histogramSamples, type Sample } from './derived-metric.js'
import { addTotals, cumulativeBuckets, emptyTotals, type RouteTotals } from './totals.js'

export const METRIC_PREFIX = 'mysqlgw_'

/**
 * Ids of exited children remembered so a stats reply that races the exit is not counted twice. A crash-looping
 * child adds one id per restart, so the memory is capped; a reply arriving 1024 restarts late is not plausible.
 */
const RETIRED_IDS_KEPT = 1024

interface LiveChild {
  /** Latest snapshot per route. A route missing from a later report keeps its last snapshot (never subtract). */
  routes: Map<string, RouteStatsSnapshot>
  /** Routes removed while this child was running: its counts still add up, its open connections are not shown. */
  hidden: Set<string>
}

/** One consistent view of all routes, computed once per change and shared by every derived metric of a scrape. */
interface Totals {
  routes: Map<string, RouteTotals>
  open: Map<string, number>
}

export interface MetricsAggregatorOptions {
  /** Also export prom-client's default process metrics of the supervisor (prefixed mysqlgw_). Default true. */
  processMetrics?: boolean
}

export class MetricsAggregator {
  readonly registry = new Registry()
  readonly #live = new Map<string, LiveChild>()
  readonly #retired = new Map<string, RouteTotals>()
  readonly #retiredIds = new Set<string>()
  /** Routes whose connections_open gauge is published (seen in a report and not removed since). */
  readonly #gaugeRoutes = new Set<string>()
  #totals: Totals | undefined

  readonly #restarts: Counter<'route'>
  readonly #reloads: Counter<'result'>
  readonly #lastReload: Gauge
  readonly #certNotAfter: Gauge<'route'>

  constructor(opts: MetricsAggregatorOptions = {}) {
    const registers = [this.registry]
    this.#defineConnectionMetrics()
    this.#restarts = new Counter({
      name: `${METRIC_PREFIX}child_restarts_total`,
      help: 'Proxy child processes restarted after an unexpected exit.',
      labelNames: ['route'],
      registers,
    })
    this.#reloads = new Counter({
      name: `${METRIC_PREFIX}config_reloads_total`,
      help: 'Configuration reloads by result (applied, or rejected with the old configuration kept).',
      labelNames: ['result'],
      registers,
    })
    this.#reloads.inc({ result: 'applied' }, 0)
    this.#reloads.inc({ result: 'rejected' }, 0)
    this.#lastReload = new Gauge({
      name: `${METRIC_PREFIX}config_last_reload_success_timestamp_seconds`,
      help: 'Unix time of the last successfully applied configuration reload (0 until one is applied).',
      registers,
    })
    this.#certNotAfter = new Gauge({
      name: `${METRIC_PREFIX}cert_not_after_timestamp_seconds`,
      help: 'Unix time after which the certificate a route presents to clients expires.',
      labelNames: ['route'],
      registers,
    })
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX })
  }

  /** Latest cumulative snapshot of one child process (childId unique per process lifetime). */
  report(childId: string, routes: Record<string, RouteStatsSnapshot>): void {
    // A reply that raced the child's exit: its counts are already in the retired totals.
    if (this.#retiredIds.has(childId)) return
    let child = this.#live.get(childId)
    if (!child) {
      child = { routes: new Map(), hidden: new Set() }
      this.#live.set(childId, child)
    }
    for (const [route, snapshot] of Object.entries(routes)) {
      child.routes.set(route, snapshot)
      if (!child.hidden.has(route)) this.#gaugeRoutes.add(route)
      // Restarts are counted before the first one happens, so increase() sees the first restart.
      this.#restarts.inc({ route }, 0)
    }
    this.#totals = undefined
  }

  /** The child exited: its last snapshot is folded into retired totals so counters never go down. */
  retire(childId: string): void {
    const child = this.#live.get(childId)
    this.#live.delete(childId)
    this.#rememberRetired(childId)
    if (!child) return
    for (const [route, snapshot] of child.routes) {
      let retired = this.#retired.get(route)
      if (!retired) {
        retired = emptyTotals()
        this.#retired.set(route, retired)
      }
      addTotals(retired, snapshot)
    }
    this.#totals = undefined
  }

  childRestarted(route: string): void {
    this.#restarts.inc({ route })
  }

  /** Counts reloads by result; an applied reload also sets the last-success timestamp. */
  reload(result: 'applied' | 'rejected'): void {
    this.#reloads.inc({ result })
    if (result === 'applied') this.#lastReload.set(Date.now() / 1000)
  }

  /** Sets the route's certificate expiry; undefined (no TLS, or not loaded) removes the series. */
  certNotAfter(route: string, unixSeconds: number | undefined): void {
    if (unixSeconds === undefined) this.#certNotAfter.remove({ route })
    else this.#certNotAfter.set({ route }, unixSeconds)
  }

  /**
   * Drops the gauges (open connections, certificate expiry) of a removed route; its counters persist.
   * Children running at this moment (the draining instance) no longer show open connections for the route;
   * a child that reports the route later (the route was added again) brings the gauge back.
   */
  routeRemoved(route: string): void {
    for (const child of this.#live.values()) if (child.routes.has(route)) child.hidden.add(route)
    this.#gaugeRoutes.delete(route)
    this.#certNotAfter.remove({ route })
    this.#totals = undefined
  }

  /** Prometheus text exposition of everything; the content type is `registry.contentType`. */
  metrics(): Promise<string> {
    return this.registry.metrics()
  }

  #rememberRetired(childId: string): void {
    this.#retiredIds.add(childId)
    if (this.#retiredIds.size > RETIRED_IDS_KEPT) {
      // Sets iterate in insertion order, so the first id is the oldest.
      this.#retiredIds.delete(this.#retiredIds.values().next().value!)
    }
  }

  #currentTotals(): Totals {
    if (this.#totals) return this.#totals
    const routes = new Map<string, RouteTotals>()
    const totalsOf = (route: string): RouteTotals => {
      let t = routes.get(route)
      if (!t) {
        t = emptyTotals()
        routes.set(route, t)
      }
      return t
    }
    for (const [route, retired] of this.#retired) addTotals(totalsOf(route), retired)
    const open = new Map<string, number>()
    for (const route of this.#gaugeRoutes) open.set(route, 0)
    for (const child of this.#live.values()) {
      for (const [route, snapshot] of child.routes) {
        addTotals(totalsOf(route), snapshot)
        if (!child.hidden.has(route) && open.has(route)) open.set(route, open.get(route)! + snapshot.open)
      }
    }
    this.#totals = {
      routes: new Map([...routes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      open,
    }
    return this.#totals
  }

  #defineConnectionMetrics(): void {
    /** One sample per route, from a function of that route's totals. */
    const perRoute = (value: (t: RouteTotals) => number) => (): Sample[] =>
      [...this.#currentTotals().routes].map(([route, t]) => ({ labels: { route }, value: value(t) }))
    /** One sample per route and key of a per-route record (outcome, TLS version, error code). */
    const perKey = (label: string, record: (t: RouteTotals) => Record<string, number>) => (): Sample[] =>
      [...this.#currentTotals().routes].flatMap(([route, t]) =>
        Object.entries(record(t)).map(([key, value]) => ({ labels: { route, [label]: key }, value }))
      )
    const histogram = (name: string, pick: (t: RouteTotals) => HistogramSnapshot) => (): Sample[] =>
      [...this.#currentTotals().routes].flatMap(([route, t]) => {
        const h = pick(t)
        return histogramSamples(name, { route }, cumulativeBuckets(h), h.sum, h.count)
      })

    const defs: ConstructorParameters<typeof DerivedMetric>[0][] = [
      {
        name: `${METRIC_PREFIX}connections_accepted_total`,
        help: 'Client connections accepted.',
        type: 'counter',
        labelNames: ['route'],
        samples: perRoute((t) => t.accepted),
      },
      {
        name: `${METRIC_PREFIX}connections_closed_total`,
        help: `Client connections closed, by outcome (${OUTCOMES.join(', ')}).`,
        type: 'counter',
        labelNames: ['route', 'outcome'],
        samples: perKey('outcome', (t) => t.closed),
      },
      {
        name: `${METRIC_PREFIX}connections_open`,
        help: 'Client connections currently open.',
        type: 'gauge',
        labelNames: ['route'],
        samples: () => [...this.#currentTotals().open].map(([route, value]) => ({ labels: { route }, value })),
      },
      {
        name: `${METRIC_PREFIX}handshake_duration_seconds`,
        help: 'Time from accepting a client to its successful authentication.',
        type: 'histogram',
        labelNames: ['route'],
        samples: histogram(`${METRIC_PREFIX}handshake_duration_seconds`, (t) => t.handshakeSeconds),
      },
      {
        name: `${METRIC_PREFIX}backend_connect_duration_seconds`,
        help: 'Time to establish the backend connection (TCP, and TLS when the backend leg uses it).',
        type: 'histogram',
        labelNames: ['route'],
        samples: histogram(`${METRIC_PREFIX}backend_connect_duration_seconds`, (t) => t.backendConnectSeconds),
      },
      {
        name: `${METRIC_PREFIX}tls_handshakes_total`,
        help: 'Completed client TLS handshakes, by protocol version.',
        type: 'counter',
        labelNames: ['route', 'version'],
        samples: perKey('version', (t) => t.tlsHandshakes),
      },
      {
        name: `${METRIC_PREFIX}bytes_total`,
        help: 'Bytes relayed, by direction.',
        type: 'counter',
        labelNames: ['route', 'direction'],
        samples: perKey('direction', (t) => ({
          client_to_backend: t.bytesFromClient,
          backend_to_client: t.bytesFromBackend,
        })),
      },
      {
        name: `${METRIC_PREFIX}gateway_errors_total`,
        help: 'MySQL error packets generated by the gateway itself (not relayed from a backend), by error number.',
        type: 'counter',
        labelNames: ['route', 'code'],
        samples: perKey('code', (t) => t.gatewayErrors),
      },
      {
        name: `${METRIC_PREFIX}sni_unmatched_total`,
        help: "TLS SNI names that matched no route on a shared listener (counted on the listener's default route).",
        type: 'counter',
        labelNames: ['route'],
        samples: perRoute((t) => t.unmatchedSni),
      },
    ]
    for (const def of defs) new DerivedMetric(def).register(this.registry)
  }
}
