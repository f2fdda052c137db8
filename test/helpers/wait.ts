/**
 * Bounded waiting. Tests poll observable state instead of sleeping, and every wait has a deadline
 * so a broken gateway fails a test instead of hanging the suite.
 */
import type { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'

export interface WaitForOptions {
  timeoutMs: number
  intervalMs?: number
  /** Names the condition in the timeout error ("backend Threads_connected back to 1"). */
  what: string
}

/**
 * Calls `fn` until it returns a truthy value and resolves with that value. A throw counts as "not
 * yet"; the last error is attached as `cause` when the deadline passes. A single `fn` call that
 * hangs is cut off at the deadline too.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs, intervalMs = 50, what }: WaitForOptions
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  let lastValue: unknown
  for (;;) {
    const remaining = deadline - Date.now()
    if (remaining <= 0) break
    try {
      const value = await withDeadline(Promise.resolve().then(fn), remaining)
      if (value) return value as NonNullable<T>
      lastValue = value
      lastError = undefined
    } catch (err) {
      if (err === DEADLINE) break
      lastError = err
    }
    const pause = Math.min(intervalMs, deadline - Date.now())
    if (pause > 0) await sleep(pause)
  }
  const detail = lastError !== undefined ? `last error: ${describe(lastError)}` : `last value: ${String(lastValue)}`
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${detail})`, { cause: lastError })
}

/**
 * Resolves with the arguments of the next `event`, rejects on `'error'` (unless that is the event
 * awaited) or after `timeoutMs`.
 */
export function once(emitter: EventEmitter, event: string | symbol, timeoutMs: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const onEvent = (...args: unknown[]) => {
      cleanup()
      resolve(args)
    }
    const onError = (err: unknown) => {
      cleanup()
      reject(err)
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${String(event)}' event`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      emitter.off(event, onEvent)
      if (event !== 'error') emitter.off('error', onError)
    }
    emitter.on(event, onEvent)
    if (event !== 'error') emitter.on('error', onError)
  })
}

const DEADLINE = Symbol('deadline')

async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(DEADLINE), ms)
  })
  // The abandoned attempt may still settle later; swallow that so it is not an unhandled rejection.
  work.catch(() => {})
  try {
    return await Promise.race([work, expired])
  } finally {
    clearTimeout(timer)
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return 'code' in err && err.code ? `${String(err.code)}: ${err.message}` : err.message
  return String(err)
}

/**
 * True if `work` settles (either way) within `ms`. The timer is cleared either way, so a pending
 * timeout never keeps the process alive after the work is done.
 */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  try {
    await withDeadline(work, ms)
    return true
  } catch (err) {
    return err !== DEADLINE
  }
}
