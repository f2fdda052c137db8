/**
 * One pre-forked, idle proxy child kept warm, so a restart or a reload does not pay for Node's startup and
 * module loading (hundreds of ms on a busy host) while a route is down or a replacement is awaited.
 *
 * An idle child has loaded its code and waits for 'start'; it holds no socket and no config. Node only reads a
 * child's IPC channel once it listens for messages, so nothing sent to it early is lost. take() hands the spare
 * out (or forks a fresh child when there is none) and a new spare is forked right away, off the hot path.
 */
import type { ChildProcess } from 'node:child_process'
import { forkRouteChild } from './child-fork.js'
import type { Logger } from '../log.js'

/**
 * Wait before forking the next spare. Zero: a child taking over from a spare only builds its engine and listens
 * (tens of ms), while back-to-back reloads (add, then change) benefit from a spare that started loading at once.
 */
const REFILL_DELAY_MS = 0
/** A spare that dies on its own is replaced at most this often (a broken install must not fork-loop). */
const MIN_RESPAWN_INTERVAL_MS = 5_000

export class SparePool {
  readonly #entry: string
  readonly #logger: Logger
  #spare: ChildProcess | undefined
  #timer: NodeJS.Timeout | undefined
  #lastFork = 0
  #closed = false

  constructor(entry: string, logger: Logger) {
    this.#entry = entry
    this.#logger = logger
  }

  #fork(): ChildProcess {
    this.#lastFork = Date.now()
    return forkRouteChild(this.#entry)
  }

  /** Starts keeping a spare. */
  fill(): void {
    if (this.#closed || this.#spare || this.#timer) return
    const spare = this.#fork()
    this.#spare = spare
    spare.once('exit', (code, signal) => {
      if (this.#spare !== spare) return
      this.#spare = undefined
      this.#logger.warn({ code, signal }, 'idle spare child exited')
      this.#schedule(Math.max(REFILL_DELAY_MS, this.#lastFork + MIN_RESPAWN_INTERVAL_MS - Date.now()))
    })
    // Errors of an idle spare only matter through its exit.
    spare.on('error', () => {})
  }

  #schedule(delayMs: number): void {
    if (this.#closed || this.#timer) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.fill()
    }, delayMs)
  }

  /** A child ready to receive 'start': the warm spare when there is one, else a fresh fork. */
  take(): ChildProcess {
    const spare = this.#spare
    this.#spare = undefined
    this.#schedule(REFILL_DELAY_MS)
    if (spare && spare.connected && spare.exitCode === null && spare.signalCode === null) {
      spare.removeAllListeners('exit')
      spare.removeAllListeners('error')
      return spare
    }
    return this.#fork()
  }

  /** Stops refilling and lets the idle spare exit (closing its channel makes it exit; it serves nothing). */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    const spare = this.#spare
    this.#spare = undefined
    if (spare?.connected) spare.disconnect()
  }
}
