/**
 * Durations in the YAML file: strings with units ("500ms", "5s", "1m30s", "8h") or integers of milliseconds.
 * The schema checks the spelling; this turns it into milliseconds and enforces the upper bound.
 */

/**
 * The longest delay a Node.js timer honours (2^31 - 1 ms, about 24.8 days). Longer delays do not wait
 * longer: Node fires them after 1 ms with a TimeoutOverflowWarning, so an idle timeout of "600h" would
 * close every connection at once. Such values are rejected instead.
 */
export const MAX_DURATION_MS = 2_147_483_647

export const DURATION_MESSAGE =
  'must be a duration such as "500ms", "5s", "1m30s" or "8h", or an integer of milliseconds'

const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const
// Units in descending order, each at most once: "1h30m", "1m30s", "2s500ms". Same pattern as the schema.
const DURATION = /^(?=[0-9])(?:([0-9]+)h)?(?:([0-9]+)m(?!s))?(?:([0-9]+)s)?(?:([0-9]+)ms)?$/

/** Milliseconds, or undefined when `value` is not a duration. Does not apply MAX_DURATION_MS. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string') return undefined
  const match = DURATION.exec(value)
  if (!match) return undefined
  const [, h, m, s, ms] = match
  return (
    Number(h ?? 0) * UNIT_MS.h + Number(m ?? 0) * UNIT_MS.m + Number(s ?? 0) * UNIT_MS.s + Number(ms ?? 0) * UNIT_MS.ms
  )
}
