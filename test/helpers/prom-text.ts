/**
 * Reads Prometheus text exposition back into numbers, so tests assert on what a scraper would see rather than
 * on prom-client internals.
 */

/** Sample key: metric name plus labels sorted by name, e.g. `x_total{outcome="ok",route="a"}`. */
export function sampleKey(name: string, labels: Record<string, string | number> = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`)
  return parts.length ? `${name}{${parts.join(',')}}` : name
}

/** Every sample line of an exposition, keyed by sampleKey(). */
export function parseSamples(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`unparsable sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    out.set(sampleKey(m[1]!, labels), Number(m[3]))
  }
  return out
}

/** The value of one sample; throws when absent so a missing series fails loudly instead of reading undefined. */
export function sample(
  samples: Map<string, number>,
  name: string,
  labels: Record<string, string | number> = {}
): number {
  const key = sampleKey(name, labels)
  const v = samples.get(key)
  if (v === undefined) throw new Error(`no sample ${key}`)
  return v
}
