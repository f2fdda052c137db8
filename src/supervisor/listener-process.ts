/**
 * One listener's child process, seen from the supervisor: fork, ready handshake with a deadline, IPC,
 * stats collection, drain, and restart with capped exponential backoff after a crash.
 *
 * A ListenerProcess serves one generation of a listener's config. A config change creates a new
 * ListenerProcess on the same listening handle; the old one is drained once the new one is ready.
 */
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ListenerConfig, LogFormat, LogLevel } from '../config/types.js'
import { GatewayError, type ErrorCode, ERROR_CODES } from '../errors.js'
import type { Logger } from '../log.js'
import type { RouteStatsSnapshot } from '../metrics/route-stats.js'
import { Backoff, type BackoffOptions } from './backoff.js'
import { forkRouteChild } from './child-fork.js'
import type { FromChild, RouteRuntimeInfo, ToChild } from './ipc.js'
import type { ListenHandle } from './listen-handle.js'

export type ChildState = 'starting' | 'ready' | 'draining' | 'down' | 'stopped'

export interface ChildStats {
  routes: Record<string, RouteStatsSnapshot>
  info: RouteRuntimeInfo[]
}

export interface ListenerProcessHooks {
  /** Every stats snapshot received (collected or final). `childId` is unique per forked process. */
  stats?(childId: string, stats: ChildStats): void
  /** A forked process is gone; its last reported counters are final. */
  exited?(childId: string): void
  /** A crashed child is being replaced (once per restart attempt). */
  restarting?(routes: string[], delayMs: number): void
  state?(state: ChildState): void
}

export interface ListenerProcessOptions {
  listener: ListenerConfig
  handle: ListenHandle
  log: { level: LogLevel; format: LogFormat }
  /** Supervisor logger bound to this listener. */
  logger: Logger
  hooks?: ListenerProcessHooks
  /** Deadline for 'ready' after fork (engine creation loads certificates). */
  readyTimeoutMs?: number
  backoff?: BackoffOptions
  /** Child entry script; the compiled src/proxy/child-main.js by default. */
  entry?: string
  /** Supplies a forked, not yet started child (the supervisor's warm spare); overrides `entry`. */
  forkChild?: () => ChildProcess
}

const DEFAULT_READY_TIMEOUT_MS = 15_000
/** Time a draining child gets beyond its drain timeout to flush and exit before it is killed. */
const DRAIN_GRACE_MS = 3_000
/** Bound on waiting for a SIGKILLed child's exit event. */
const KILL_WAIT_MS = 2_000
export const DEFAULT_CHILD_ENTRY = fileURLToPath(new URL('../proxy/child-main.js', import.meta.url))

let childSeq = 0

function asErrorCode(code: string): ErrorCode {
  return code in ERROR_CODES ? (code as ErrorCode) : 'GW_ERR_LISTEN'
}

export class ListenerProcess {
  /** Replaced by update(): a restart after a crash then starts with the routes in force. */
  listener: ListenerConfig
  readonly #opts: ListenerProcessOptions
  readonly #logger: Logger
  readonly #backoff: Backoff
  #state: ChildState = 'starting'
  #child: ChildProcess | undefined
  #logLevel: LogLevel
  #restartTimer: NodeJS.Timeout | undefined
  #everReady = false
  #collectSeq = 0
  #pendingCollect = new Map<number, (stats: ChildStats | undefined) => void>()
  #pendingUpdate = new Map<number, (result: { ok: boolean; message?: string }) => void>()
  #exited: Promise<void> = Promise.resolve()
  /** Last runtime info reported, for the admin view between collections. */
  lastInfo: RouteRuntimeInfo[] = []

  constructor(opts: ListenerProcessOptions) {
    this.listener = opts.listener
    this.#opts = opts
    this.#logger = opts.logger
    this.#logLevel = opts.log.level
    this.#backoff = new Backoff(opts.backoff)
  }

  get state(): ChildState {
    return this.#state
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  get routeNames(): string[] {
    return this.listener.routes.map((r) => r.name)
  }

  /**
   * Forks the first child and resolves when it is ready. Rejects (GatewayError) when it reports a fatal
   * error, exits, or misses the ready deadline; the instance is then 'stopped' and never restarts by itself.
   */
  async start(): Promise<void> {
    try {
      await this.#spawn()
    } catch (err) {
      this.#setState('stopped')
      throw err
    }
  }

  #setState(state: ChildState): void {
    if (this.#state === state) return
    this.#state = state
    this.#opts.hooks?.state?.(state)
  }

  #send(msg: ToChild, handle?: unknown): boolean {
    const child = this.#child
    if (!child?.connected) return false
    try {
      // The raw TCP handle is accepted by child_process ('net.Native'), though the typings only list net objects.
      child.send(msg, handle as never, (err) => {
        if (err) this.#logger.debug({ err, type: msg.type }, 'ipc send failed')
      })
      return true
    } catch (err) {
      this.#logger.debug({ err, type: msg.type }, 'ipc send failed')
      return false
    }
  }

  /** Forks one child and waits for its ready message. */
  #spawn(): Promise<void> {
    this.#setState('starting')
    const childId = `${this.listener.key}#${++childSeq}`
    const child =
      this.#opts.forkChild?.() ??
      forkRouteChild(this.#opts.entry ?? DEFAULT_CHILD_ENTRY)
    this.#child = child
    let resolveExit!: () => void
    this.#exited = new Promise((r) => (resolveExit = r))
    const log = this.#logger.child({ childPid: child.pid })
    log.info({ childId }, 'child started')

    return new Promise<void>((resolve, reject) => {
      let settled = false
      let fatal: { code: string; message: string } | undefined
      const readyTimeoutMs = this.#opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS
      const timer = setTimeout(() => {
        fail(new GatewayError('GW_ERR_LISTEN', `child not ready within ${readyTimeoutMs} ms`))
        child.kill('SIGKILL')
      }, readyTimeoutMs)
      const fail = (err: GatewayError) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        reject(err)
      }

      child.on('message', (msg: FromChild) => {
        switch (msg.type) {
          case 'ready':
            if (settled) return
            settled = true
            clearTimeout(timer)
            this.#everReady = true
            this.#backoff.healthy(Date.now())
            this.#setState('ready')
            log.info({ childId }, 'child ready')
            resolve()
            return
          case 'fatal':
            fatal = msg
            log.error({ code: msg.code, reason: msg.message }, 'child failed to start')
            fail(new GatewayError(asErrorCode(msg.code), msg.message))
            return
          case 'stats': {
            const stats = { routes: msg.routes, info: msg.info }
            this.lastInfo = msg.info
            // Stats of a process other than the current one still belong to that process's childId.
            this.#opts.hooks?.stats?.(childId, stats)
            this.#pendingCollect.get(msg.id)?.(stats)
            return
          }
          case 'updated':
            this.#pendingUpdate.get(msg.id)?.({ ok: msg.ok, message: msg.message })
            return
          case 'tls-reloaded':
            // The child logs details; the supervisor only needs to know it is done.
            return
          case 'draining':
          case 'drained':
            log.debug({ msg: msg.type }, 'child drain progress')
            return
        }
      })
      child.on('error', (err) => log.warn({ err }, 'child process error'))
      child.on('exit', (code, signal) => {
        resolveExit()
        // Its sessions died with it; the certificate info stays meaningful until the next child reports.
        this.lastInfo = this.lastInfo.map((i) => ({ ...i, open: 0 }))
        for (const done of this.#pendingCollect.values()) done(undefined)
        this.#pendingCollect.clear()
        for (const done of this.#pendingUpdate.values()) done({ ok: false, message: 'child exited' })
        this.#pendingUpdate.clear()
        this.#opts.hooks?.exited?.(childId)
        const expected = this.#state === 'draining' || this.#state === 'stopped'
        log[expected ? 'info' : 'error']({ childId, code, signal }, 'child exited')
        if (!settled) {
          fail(
            new GatewayError(
              asErrorCode(fatal?.code ?? 'GW_ERR_LISTEN'),
              fatal?.message ?? `child exited before ready (code ${code}, signal ${signal})`
            )
          )
        }
        // Restart only what has served before: a first start that fails is reported to the caller instead
        // (bind/cert problems of a new config must not loop), and a drained or killed child stays down.
        if (!expected && this.#everReady && this.#child === child) this.#crashed()
      })
      this.#send({ type: 'start', listener: this.listener, log: { ...this.#opts.log, level: this.#logLevel } }, this.#opts.handle.handle)
    })
  }

  /** An unexpected exit: restart on the same handle after a backoff delay; other listeners are unaffected. */
  #crashed(): void {
    this.#setState('down')
    const delayMs = this.#backoff.nextDelay(Date.now())
    this.#logger.warn({ delayMs, attempt: this.#backoff.attempts }, 'restarting child after backoff')
    this.#opts.hooks?.restarting?.(this.routeNames, delayMs)
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined
      if (this.#state !== 'down') return
      // On failure the exit handler schedules the next attempt (with a longer delay).
      this.#spawn().catch((err: unknown) => this.#logger.error({ err }, 'child restart failed'))
    }, delayMs)
  }

  /** Asks for a stats snapshot; undefined when the child is not running or does not answer in time. */
  collect(timeoutMs: number): Promise<ChildStats | undefined> {
    const id = ++this.#collectSeq
    if (this.#state !== 'ready' && this.#state !== 'draining') return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), timeoutMs)
      const done = (stats: ChildStats | undefined) => {
        clearTimeout(timer)
        this.#pendingCollect.delete(id)
        resolve(stats)
      }
      this.#pendingCollect.set(id, done)
      if (!this.#send({ type: 'collect', id })) done(undefined)
    })
  }

  /**
   * Applies a new route set of a shared listener inside the running child (see ListenerEngine.update).
   * Resolves with the child's verdict; on failure the child keeps its previous routes.
   */
  update(next: ListenerConfig, timeoutMs = 15_000): Promise<{ ok: boolean; message?: string }> {
    const id = ++this.#collectSeq
    if (this.#state !== 'ready') return Promise.resolve({ ok: false, message: `child is ${this.#state}` })
    return new Promise((resolve) => {
      const timer = setTimeout(() => done({ ok: false, message: 'no answer from the child' }), timeoutMs)
      const done = (result: { ok: boolean; message?: string }) => {
        clearTimeout(timer)
        this.#pendingUpdate.delete(id)
        if (result.ok) this.listener = next
        resolve(result)
      }
      this.#pendingUpdate.set(id, done)
      if (!this.#send({ type: 'update', id, listener: next })) done({ ok: false, message: 'child not connected' })
    })
  }

  /** New handshakes use re-read certificate material; nothing restarts. */
  reloadTls(routes?: string[]): void {
    this.#send({ type: 'reload-tls', routes })
  }

  setLogLevel(level: LogLevel): void {
    this.#logLevel = level
    this.#send({ type: 'set-log-level', level })
  }

  /**
   * Stops accepting, lets open connections finish up to timeoutMs, and resolves when the child is gone
   * (killed if it overstays). No restart follows.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'draining') return this.#exited
    clearTimeout(this.#restartTimer)
    const alive = this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
    this.#setState('draining')
    if (!alive || !this.#send({ type: 'drain', timeoutMs })) {
      await this.kill()
      this.#setState('stopped')
      return
    }
    const overstayed = setTimeout(() => {
      this.#logger.warn({ timeoutMs }, 'child did not exit after drain, killing it')
      void this.kill()
    }, timeoutMs + DRAIN_GRACE_MS)
    await this.#exited
    clearTimeout(overstayed)
    this.#setState('stopped')
  }

  /** Immediate stop (second signal): no drain, no restart. Resolves when the process is gone (bounded). */
  async kill(): Promise<void> {
    clearTimeout(this.#restartTimer)
    if (this.#state !== 'draining') this.#setState('stopped')
    const child = this.#child
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await Promise.race([this.#exited, new Promise((r) => setTimeout(r, KILL_WAIT_MS).unref())])
  }
}
