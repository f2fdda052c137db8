/**
 * Restart delays for a crashing child: capped exponential backoff (100 ms, 200 ms, ... 10 s) that forgets past
 * crashes once a child has stayed healthy for a while. Pure (the caller passes the clock) so it is unit-tested
 * without timers.
 */

export interface BackoffOptions {
  /** Delay before the first restart after a healthy period. */
  initialMs?: number
  /** Upper bound of any delay. */
  maxMs?: number
  factor?: number
  /** A child that stayed ready this long before crashing counts as healthy: its restart starts over at initialMs. */
  resetAfterMs?: number
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  initialMs: 100,
  maxMs: 10_000,
  factor: 2,
  resetAfterMs: 30_000,
}

export class Backoff {
  readonly #opts: Required<BackoffOptions>
  /** Restarts since the last reset; the next delay is initialMs * factor ** attempts. */
  #attempts = 0
  #healthySince: number | undefined

  constructor(opts: BackoffOptions = {}) {
    this.#opts = { ...DEFAULT_BACKOFF, ...opts }
  }

  get attempts(): number {
    return this.#attempts
  }

  /** The child became ready at `now`; if it stays up for resetAfterMs the next crash restarts quickly again. */
  healthy(now: number): void {
    this.#healthySince = now
  }

  /** The child is gone at `now`; returns how long to wait before starting the next one. */
  nextDelay(now: number): number {
    if (this.#healthySince !== undefined && now - this.#healthySince >= this.#opts.resetAfterMs) this.#attempts = 0
    this.#healthySince = undefined
    const { initialMs, maxMs, factor } = this.#opts
    // Cap the exponent too, so a child that crash-loops for days never overflows to Infinity/NaN.
    const delay = Math.min(maxMs, initialMs * factor ** Math.min(this.#attempts, 64))
    this.#attempts++
    return delay
  }

  reset(): void {
    this.#attempts = 0
    this.#healthySince = undefined
  }
}
