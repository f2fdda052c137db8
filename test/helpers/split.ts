/**
 * TCP and TLS hand over bytes in arbitrary pieces. `forEverySplit` replays one byte string as every kind of
 * chunking a parser must survive (pg-protocol's split tests, mysql2's `|` notation, generalised):
 *   - unsplit,
 *   - one cut at every position 1..n-1,
 *   - 1-byte chunks,
 *   - a few random multi-cut chunkings from a fixed seed (reproducible; the label names the cuts).
 * `fn` gets the chunks and a label to put in assertion messages.
 */

export type SplitFn = (chunks: Buffer[], label: string) => void

export interface SplitOptions {
  /** How many random multi-cut chunkings to add (default 8). */
  randomRuns?: number
  /** PRNG seed for those (default 0x5eed). */
  seed?: number
}

export function forEverySplit(bytes: Buffer, fn: SplitFn, options: SplitOptions = {}): void {
  for (const { chunks, label } of splits(bytes, options)) fn(chunks, label)
}

/** The chunkings forEverySplit replays, as data (for tests of the helper and for async callers). */
export function splits(bytes: Buffer, options: SplitOptions = {}): Array<{ chunks: Buffer[]; label: string }> {
  const out: Array<{ chunks: Buffer[]; label: string }> = []
  out.push({ chunks: [bytes], label: 'unsplit' })
  for (let i = 1; i < bytes.length; i++) out.push({ chunks: cut(bytes, [i]), label: `split at ${i}` })
  if (bytes.length > 1) out.push({ chunks: cut(bytes, range(1, bytes.length)), label: '1-byte chunks' })
  const random = mulberry32(options.seed ?? 0x5eed)
  const runs = bytes.length > 2 ? (options.randomRuns ?? 8) : 0
  for (let run = 0; run < runs; run++) {
    const cuts = new Set<number>()
    const wanted = 2 + Math.floor(random() * Math.min(6, bytes.length - 2))
    while (cuts.size < wanted) cuts.add(1 + Math.floor(random() * (bytes.length - 1)))
    const sorted = [...cuts].sort((a, b) => a - b)
    out.push({ chunks: cut(bytes, sorted), label: `random cuts at ${sorted.join(',')}` })
  }
  return out
}

/** Cuts `bytes` at the given ascending positions (views, not copies: fine for the many-megabyte fixtures). */
export function cut(bytes: Buffer, positions: number[]): Buffer[] {
  const chunks: Buffer[] = []
  let start = 0
  for (const p of [...positions, bytes.length]) {
    chunks.push(bytes.subarray(start, p))
    start = p
  }
  return chunks
}

function range(from: number, to: number): number[] {
  const out: number[] = []
  for (let i = from; i < to; i++) out.push(i)
  return out
}

/** Small deterministic PRNG (public-domain mulberry32). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
