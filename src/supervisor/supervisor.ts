/**
 * The supervisor: one child process per listener, listening sockets owned here, reload by diff.
 *
 * Per listen address there is one Slot: the bound handle (kept for the slot's whole life, see listen-handle.ts),
 * the ListenerProcess serving it, and older processes still draining after a replacement. Reloads are
 * serialized; each one validates the whole file first and then applies planReload()'s diff, starting every
 * new child before draining the one it replaces (caddy: start new, then stop old; keep old if new fails).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { GatewayConfig, ListenerConfig, LogLevel } from '../config/types.js'
import { groupListeners } from '../config/types.js'
import type { RouteView, SupervisorView } from '../admin/view.js'
import { ConfigError } from '../errors.js'
import type { Logger } from '../log.js'
import type { MetricsAggregator } from '../metrics/aggregator.js'
import { Backoff } from './backoff.js'
import { hashFile } from './config-watch.js'
import { bindListenHandle, type ListenHandle } from './listen-handle.js'
import { DEFAULT_CHILD_ENTRY, ListenerProcess, type ListenerProcessHooks } from './listener-process.js'
import { isNoop, listenerFingerprint, planReload, tlsFilesByRoute } from './plan.js'
import { buildRouteViews } from './route-views.js'
import { SparePool } from './spare-pool.js'

export interface SupervisorOptions {
  logger: Logger
  metrics: MetricsAggregator
  /** Loads and validates the whole file; throws ConfigError listing every problem. */
  loadConfig(path: string): Promise<GatewayConfig>
  /** Called after a reload was applied, with the new config (admin server, file watch). */
  onApplied?(config: GatewayConfig, previous: GatewayConfig): Promise<void> | void
  childEntry?: string
  readyTimeoutMs?: number
  /** Keep one idle pre-forked child to start from (default true): faster crash recovery and reloads. */
  warmSpare?: boolean
}

export type ReloadResult = 'applied' | 'rejected' | 'skipped'

interface Slot {
  key: string
  handle?: ListenHandle
  /** The process serving this address; its `.listener` is the config actually running. */
  current?: ListenerProcess
  /** Desired config while the slot cannot run (bind or start failure); retried with backoff. */
  failed?: { listener: ListenerConfig; error: string; timer?: NodeJS.Timeout; backoff: Backoff }
  /** sha256 of each TLS file as the current child loaded it, to detect rotations. */
  tlsHashes: Map<string, string | undefined>
  /** Tail of the slot's operation queue (see #enqueue). */
  queue: Promise<unknown>
}

const COLLECT_TIMEOUT_MS = 1_000

function drainTimeoutOf(listener: ListenerConfig): number {
  return Math.max(0, ...listener.routes.map((r) => r.drainTimeoutMs))
}

export class Supervisor implements SupervisorView {
  readonly #opts: SupervisorOptions
  readonly #log: Logger
  readonly #metrics: MetricsAggregator
  readonly #slots = new Map<string, Slot>()
  /** Replaced or removed processes still finishing their connections. */
  readonly #retiring = new Set<ListenerProcess>()
  readonly #spares: SparePool | undefined
  #config!: GatewayConfig
  #stopping = false
  /** Set by kill(): a shutdown still in its delay returns without draining. */
  #killed = false
  /** Aborts the wait of shutdown()'s delay. */
  #shutdownDelay: AbortController | undefined
  #reloadChain: Promise<unknown> = Promise.resolve()

  constructor(opts: SupervisorOptions) {
    this.#opts = opts
    this.#log = opts.logger
    this.#metrics = opts.metrics
    if (opts.warmSpare !== false) this.#spares = new SparePool(opts.childEntry ?? DEFAULT_CHILD_ENTRY, opts.logger)
  }

  get config(): GatewayConfig {
    return this.#config
  }

  /** Binds and starts every listener. Failures are per listener and logged with the routes they affect. */
  async start(config: GatewayConfig): Promise<{ started: number; failed: number }> {
    this.#config = config
    const results = await Promise.all(groupListeners(config.routes).map((l) => this.#startSlot(l)))
    // Forked after the first children so it does not slow down startup itself.
    if (!this.#stopping) this.#spares?.fill()
    const started = results.filter(Boolean).length
    return { started, failed: results.length - started }
  }

  /** Re-reads the config file and applies it; serialized so two triggers never interleave. */
  reload(trigger: string): Promise<ReloadResult> {
    const run = this.#reloadChain.then(() => this.#reload(trigger))
    this.#reloadChain = run.catch(() => undefined)
    return run
  }

  async #reload(trigger: string): Promise<ReloadResult> {
    if (this.#stopping) return 'skipped'
    const file = this.#config.sourcePath
    let next: GatewayConfig
    try {
      next = await this.#opts.loadConfig(file)
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [String((err as Error)?.message ?? err)]
      const code = err instanceof ConfigError ? err.code : 'GW_ERR_CONFIG_READ'
      this.#log.error({ trigger, file, code, problems }, 'reload rejected, running configuration kept')
      this.#metrics.reload('rejected')
      // Certificate rotation is independent of the YAML being valid.
      await this.checkTls()
      return 'rejected'
    }
    if (this.#stopping) return 'skipped'
    const t0 = Date.now()
    await this.#apply(next, trigger)
    this.#log.info({ trigger, file, durationMs: Date.now() - t0, ready: this.ready() }, 'reload applied')
    return 'applied'
  }

  async #apply(next: GatewayConfig, trigger: string): Promise<void> {
    const previous = this.#config
    this.#config = next
    if (next.log.level !== previous.log.level) this.#setLogLevel(next.log.level)

    const desired = groupListeners(next.routes)
    const running = [...this.#slots.values()].flatMap((s) => (s.current ? [s.current.listener] : []))
    const plan = planReload(running, desired)
    this.#log.info(
      {
        trigger,
        add: plan.add.map((l) => l.key),
        remove: plan.remove.map((l) => l.key),
        replace: plan.replace.map((c) => ({ listener: c.key, ...routesDiff(c) })),
        keep: plan.keep.length,
      },
      isNoop(plan) ? 'reload: no listener changes' : 'reload plan'
    )

    // Failed slots are re-planned from scratch: retried if still wanted (they show up in `add`), else dropped.
    const desiredKeys = new Set(desired.map((l) => l.key))
    for (const slot of this.#slots.values()) {
      if (!slot.failed) continue
      clearTimeout(slot.failed.timer)
      slot.failed = undefined
      if (!slot.current && !desiredKeys.has(slot.key)) this.#dropSlot(slot)
    }
    for (const listener of plan.remove) {
      const slot = this.#slots.get(listener.key)
      if (slot) this.#dropSlot(slot)
    }
    await Promise.all([...plan.add, ...plan.replace.map((c) => c.next)].map((l) => this.#startSlot(l)))
    for (const name of plan.removedRoutes) this.#metrics.routeRemoved(name)
    this.#metrics.reload('applied')
    await this.#opts.onApplied?.(next, previous)
    await this.checkTls()
  }

  #hooks(): ListenerProcessHooks {
    return {
      stats: (childId, stats) => this.#metrics.report(childId, stats.routes),
      exited: (childId) => this.#metrics.retire(childId),
      restarting: (routes) => routes.forEach((r) => this.#metrics.childRestarted(r)),
    }
  }

  #newProcess(listener: ListenerConfig, handle: ListenHandle): ListenerProcess {
    const logger = this.#log.child(routeFields(listener))
    return new ListenerProcess({
      listener,
      handle,
      log: this.#config.log,
      logger,
      hooks: this.#hooks(),
      entry: this.#opts.childEntry,
      forkChild: this.#spares && (() => this.#spares!.take()),
      readyTimeoutMs: this.#opts.readyTimeoutMs,
    })
  }

  /**
   * Runs `fn` after every earlier operation on the slot, so a background retry, a reload and a replacement
   * never start two processes for one address at the same time.
   */
  #enqueue<T>(slot: Slot, fn: () => Promise<T>): Promise<T> {
    const run = slot.queue.then(fn)
    slot.queue = run.then(
      () => undefined,
      () => undefined
    )
    return run
  }

  /** Starts a listener on a new or failed slot. Resolves false on failure (then retried with backoff). */
  #startSlot(listener: ListenerConfig): Promise<boolean> {
    let slot = this.#slots.get(listener.key)
    if (!slot) {
      slot = { key: listener.key, tlsHashes: new Map(), queue: Promise.resolve() }
      this.#slots.set(listener.key, slot)
    }
    const s = slot
    return this.#enqueue(s, () => (s.current ? this.#replace(s, listener) : this.#bindAndStart(s, listener)))
  }

  async #bindAndStart(slot: Slot, listener: ListenerConfig): Promise<boolean> {
    if (this.#stopping || this.#slots.get(slot.key) !== slot) return false
    try {
      slot.handle ??= await bindListenHandle(listener.listen)
      const hashes = await hashTlsFiles(listener)
      const proc = this.#newProcess(listener, slot.handle)
      await proc.start()
      if (this.#stopping || this.#slots.get(slot.key) !== slot) {
        void proc.drain(drainTimeoutOf(listener))
        return false
      }
      slot.current = proc
      slot.tlsHashes = hashes
      slot.failed = undefined
      return true
    } catch (err) {
      const e = err as Error & { code?: string }
      this.#log.error({ ...routeFields(listener), code: e.code, err }, 'listener failed to start')
      if (this.#slots.get(slot.key) === slot) this.#scheduleRetry(slot, listener, e.message)
      return false
    }
  }

  /** A listener that could not bind or start is retried with backoff (the port may be freed, a cert fixed). */
  #scheduleRetry(slot: Slot, listener: ListenerConfig, error: string): void {
    if (this.#stopping) return
    const backoff = slot.failed?.backoff ?? new Backoff({ initialMs: 250 })
    const delayMs = backoff.nextDelay(Date.now())
    const failed: NonNullable<Slot['failed']> = { listener, error, backoff }
    failed.timer = setTimeout(() => {
      // A reload in between re-planned this slot; its own start supersedes this retry.
      if (slot.failed !== failed) return
      void this.#enqueue(slot, () => (slot.failed === failed ? this.#bindAndStart(slot, listener) : Promise.resolve(false)))
    }, delayMs)
    slot.failed = failed
    this.#log.warn({ ...routeFields(listener), delayMs }, 'listener start will be retried')
  }

  /**
   * Changed listener: the new child listens on the same handle first, and the old one drains only once the new
   * one is ready, so no connection is refused and none is cut. If the new one fails, the old one keeps serving.
   */
  async #replace(slot: Slot, next: ListenerConfig): Promise<boolean> {
    const old = slot.current
    if (!old || !slot.handle) return this.#bindAndStart(slot, next)
    if (listenerFingerprint(old.listener) === listenerFingerprint(next)) return true
    if (old.listener.greeting === 'gateway' && next.greeting === 'gateway' && old.state === 'ready') {
      // A shared listener serves several tenants: replacing its process would cut every tenant's sessions
      // after drainTimeout. Apply the route changes inside the running child instead.
      const hashes = await hashTlsFiles(next)
      const result = await old.update(next)
      if (result.ok) {
        slot.tlsHashes = hashes
        return true
      }
      this.#log.error({ ...routeFields(next), reason: result.message }, 'in-place route update failed, previous routes keep serving')
      return false
    }
    const proc = this.#newProcess(next, slot.handle)
    try {
      const hashes = await hashTlsFiles(next)
      await proc.start()
      if (this.#stopping || slot.current !== old) {
        void proc.drain(drainTimeoutOf(next))
        return false
      }
      slot.current = proc
      slot.tlsHashes = hashes
      this.#retire(old)
      return true
    } catch (err) {
      this.#log.error(
        { ...routeFields(next), err, code: (err as { code?: string }).code },
        'replacement failed to start, previous instance keeps serving'
      )
      return false
    }
  }

  #retire(proc: ListenerProcess): void {
    this.#retiring.add(proc)
    void proc.drain(drainTimeoutOf(proc.listener)).finally(() => this.#retiring.delete(proc))
  }

  /**
   * Removes a slot: its process drains and the supervisor's copy of the socket closes at once. The child closes
   * its copy when it gets 'drain', so from then on the port refuses, as it should for a removed route, and a
   * later reload can bind it again.
   */
  #dropSlot(slot: Slot): void {
    this.#slots.delete(slot.key)
    clearTimeout(slot.failed?.timer)
    slot.failed = undefined
    if (slot.current) this.#retire(slot.current)
    slot.handle?.close()
  }

  #processes(): ListenerProcess[] {
    const current = [...this.#slots.values()].flatMap((s) => (s.current ? [s.current] : []))
    return [...current, ...this.#retiring]
  }

  #setLogLevel(level: LogLevel): void {
    this.#log.level = level
    for (const p of this.#processes()) p.setLogLevel(level)
    this.#log.info({ level }, 'log level changed')
  }

  /** Sends reload-tls to each child whose certificate, key or CA files changed content since it loaded them. */
  async checkTls(): Promise<void> {
    for (const slot of this.#slots.values()) {
      const proc = slot.current
      if (!proc || proc.state !== 'ready') continue
      const changedRoutes: string[] = []
      for (const [route, files] of tlsFilesByRoute(proc.listener)) {
        for (const file of files) {
          const hash = await hashFile(file)
          if (hash === undefined || hash === slot.tlsHashes.get(file)) continue
          slot.tlsHashes.set(file, hash)
          if (!changedRoutes.includes(route)) changedRoutes.push(route)
        }
      }
      if (changedRoutes.length === 0) continue
      this.#log.info({ listener: slot.key, routes: changedRoutes }, 'tls files changed, reloading tls material')
      proc.reloadTls(changedRoutes)
    }
  }

  /**
   * Graceful stop: readiness false at once (no more reloads or start retries). With `delayMs`, the listeners
   * keep accepting and serving that long, so a load balancer that sees /readyz fail stops sending before any
   * client is refused; then every child drains (in parallel) and the handles close. kill() cuts the delay short.
   */
  async shutdown(opts: { delayMs?: number } = {}): Promise<void> {
    this.#stopping = true
    for (const slot of this.#slots.values()) clearTimeout(slot.failed?.timer)
    const delayMs = opts.delayMs ?? 0
    if (delayMs > 0 && !this.#killed) {
      const abort = new AbortController()
      this.#shutdownDelay = abort
      await sleep(delayMs, undefined, { signal: abort.signal }).catch(() => undefined)
      this.#shutdownDelay = undefined
      if (!this.#killed) this.#log.info({ delayMs }, 'shutdown delay over: draining every listener')
    }
    if (this.#killed) return
    this.#spares?.close()
    const drains: Promise<void>[] = []
    for (const slot of this.#slots.values()) {
      clearTimeout(slot.failed?.timer)
      if (slot.current) drains.push(slot.current.drain(drainTimeoutOf(slot.current.listener)))
    }
    for (const proc of this.#retiring) drains.push(proc.drain(drainTimeoutOf(proc.listener)))
    // Children close their copies when they get 'drain'; closing ours too makes the ports refuse new clients at
    // once (they can go elsewhere) instead of queueing them in a backlog nobody will accept from.
    this.#closeHandles()
    await Promise.all(drains)
  }

  /** Immediate stop (second signal): children are killed, nothing drains; a pending shutdown delay ends. */
  async kill(): Promise<void> {
    this.#stopping = true
    this.#killed = true
    this.#shutdownDelay?.abort()
    this.#spares?.close()
    for (const slot of this.#slots.values()) clearTimeout(slot.failed?.timer)
    await Promise.all(this.#processes().map((p) => p.kill()))
    this.#closeHandles()
  }

  #closeHandles(): void {
    for (const slot of this.#slots.values()) slot.handle?.close()
  }

  // ---- SupervisorView (admin server) ----

  healthy(): boolean {
    return true
  }

  shuttingDown(): boolean {
    return this.#stopping
  }

  ready(): boolean {
    if (this.#stopping) return false
    return [...this.#slots.values()].every((s) => !s.failed && s.current?.state === 'ready')
  }

  routes(): RouteView[] {
    return buildRouteViews({
      routes: this.#config.routes,
      serving: (key) => this.#slots.get(key)?.current,
      retiring: this.#retiring,
    })
  }

  async refreshStats(): Promise<void> {
    await Promise.all(this.#processes().map((p) => p.collect(COLLECT_TIMEOUT_MS)))
    for (const slot of this.#slots.values()) {
      for (const info of slot.current?.lastInfo ?? []) this.#metrics.certNotAfter(info.route, info.cert?.notAfterUnix)
    }
  }
}

/**
 * Log fields naming what a listener serves: `route` for the usual one-route listener (so filtering logs by route
 * works), `routes` for a shared SNI listener.
 */
function routeFields(listener: ListenerConfig): { listener: string; route?: string; routes?: string[] } {
  const names = listener.routes.map((r) => r.name)
  return names.length === 1 ? { listener: listener.key, route: names[0] } : { listener: listener.key, routes: names }
}

function routesDiff(c: { addedRoutes: string[]; removedRoutes: string[]; changedRoutes: string[] }) {
  return { addedRoutes: c.addedRoutes, removedRoutes: c.removedRoutes, changedRoutes: c.changedRoutes }
}

async function hashTlsFiles(listener: ListenerConfig): Promise<Map<string, string | undefined>> {
  const hashes = new Map<string, string | undefined>()
  for (const files of tlsFilesByRoute(listener).values()) for (const f of files) hashes.set(f, await hashFile(f))
  return hashes
}
