/**
 * The loads the bench drives from its own process with the small client (mini-client.ts): new
 * connections per second at a fixed concurrency, single-connection bulk read, and a pool of idle
 * authenticated connections. Every loop is bounded by a deadline.
 */
import { connect, type Endpoint, type MiniConnection } from './mini-client.js'

export interface LatencyStats {
  count: number
  /** Milliseconds. */
  p50: number
  p95: number
  p99: number
}

export function latencyStats(samplesMs: number[]): LatencyStats {
  const s = Float64Array.from(samplesMs).sort()
  const at = (q: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))])
  return { count: s.length, p50: at(0.5), p95: at(0.95), p99: at(0.99) }
}

const CONNECT_TIMEOUT_MS = 15_000
const QUIT_TIMEOUT_MS = 2_000

export interface ConnectLoadResult extends LatencyStats {
  connections: number
  perSecond: number
  seconds: number
  errors: number
  firstError?: string
  /** Connections whose TLS handshake resumed a session. */
  resumed: number
  cipher?: string
  protocol?: string
}

/**
 * Open -> (TLS) -> authenticate -> COM_QUIT -> close, `concurrency` loops for `seconds`. Latency is from
 * the TCP connect to the auth OK. With `resume`, every loop offers the newest session ticket it got.
 */
export async function connectLoad(
  ep: Endpoint,
  opts: { seconds: number; concurrency: number; resume: boolean }
): Promise<ConnectLoadResult> {
  const samples: number[] = []
  let errors = 0
  let firstError: string | undefined
  let resumed = 0
  let cipher: string | undefined
  let protocol: string | undefined
  let session: Buffer | undefined
  const started = performance.now()
  const stopAt = started + opts.seconds * 1000
  const worker = async () => {
    while (performance.now() < stopAt) {
      const t0 = performance.now()
      let conn: MiniConnection | undefined
      try {
        conn = await connect(ep, {
          timeoutMs: CONNECT_TIMEOUT_MS,
          session: opts.resume ? session : undefined,
          onSession: opts.resume ? (s) => (session = s) : undefined,
        })
        samples.push(performance.now() - t0)
        if (conn.resumed) resumed++
        cipher ??= conn.cipher
        protocol ??= conn.protocol
        await conn.quit(QUIT_TIMEOUT_MS)
      } catch (err) {
        conn?.destroy()
        errors++
        firstError ??= (err as Error).message
        // A failing target must not turn into a tight loop of instant failures.
        await new Promise((r) => setTimeout(r, 20))
      }
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency }, worker))
  const seconds = (performance.now() - started) / 1000
  return {
    ...latencyStats(samples),
    connections: samples.length,
    perSecond: samples.length / seconds,
    seconds,
    errors,
    firstError,
    resumed,
    cipher,
    protocol,
  }
}

export interface BulkResult extends LatencyStats {
  queries: number
  mib: number
  mibPerSecond: number
  seconds: number
  rowsPerQuery: number
}

/**
 * One connection runs `sql` (a result of `rows` rows of `rowBytes`) repeatedly, at least `minQueries`
 * times and until `seconds` have passed; the throughput counts result payload bytes.
 */
export async function bulkLoad(
  ep: Endpoint,
  opts: {
    sql: string
    rows: number
    seconds: number
    minQueries: number
    maxQueries: number
    queryTimeoutMs: number
    /** Called once connected, before the first query (CPU metering starts there). */
    onReady?: () => void
  }
): Promise<BulkResult> {
  const conn = await connect(ep, { timeoutMs: CONNECT_TIMEOUT_MS })
  try {
    opts.onReady?.()
    const samples: number[] = []
    let bytes = 0
    const started = performance.now()
    const stopAt = started + opts.seconds * 1000
    while (samples.length < opts.maxQueries && (samples.length < opts.minQueries || performance.now() < stopAt)) {
      const t0 = performance.now()
      const r = await conn.query(opts.sql, opts.queryTimeoutMs)
      if (r.rows !== opts.rows) throw new Error(`bulk query returned ${r.rows} rows, expected ${opts.rows}`)
      samples.push(performance.now() - t0)
      bytes += r.bytes
    }
    // Throughput over the queries themselves (the connect is not part of the bulk read).
    const busy = samples.reduce((a, b) => a + b, 0) / 1000
    const mib = bytes / 1048576
    return {
      ...latencyStats(samples),
      queries: samples.length,
      mib,
      mibPerSecond: mib / busy,
      seconds: busy,
      rowsPerQuery: opts.rows,
    }
  } finally {
    await conn.quit(QUIT_TIMEOUT_MS)
  }
}

/** Idle authenticated connections held open until `closeAll`. */
export class IdlePool {
  readonly conns: MiniConnection[] = []
  session: Buffer | undefined
  errors = 0
  firstError: string | undefined

  constructor(private readonly ep: Endpoint) {}

  /** Opens connections until `total` are open, `concurrency` at a time; bounded by `timeoutMs`. */
  async growTo(total: number, concurrency: number, timeoutMs: number): Promise<{ seconds: number }> {
    const started = performance.now()
    const deadline = started + timeoutMs
    let next = this.conns.length
    const worker = async () => {
      while (next < total && performance.now() < deadline && this.errors < 50) {
        next++
        try {
          const conn = await connect(this.ep, {
            timeoutMs: CONNECT_TIMEOUT_MS,
            session: this.session,
            onSession: (s) => (this.session = s),
          })
          conn.socket.on('error', () => {}) // an idle socket reset by a peer must not crash the bench
          this.conns.push(conn)
        } catch (err) {
          next--
          this.errors++
          this.firstError ??= (err as Error).message
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    if (this.conns.length < total) {
      throw new Error(
        `idle pool reached ${this.conns.length}/${total} connections (${this.errors} errors, first: ${this.firstError ?? 'deadline'})`
      )
    }
    return { seconds: (performance.now() - started) / 1000 }
  }

  /** Every connection is still open (none closed by the gateway or the server while idle). */
  openCount(): number {
    return this.conns.filter((c) => !c.socket.destroyed && c.socket.readyState === 'open').length
  }

  async closeAll(): Promise<void> {
    const all = this.conns.splice(0)
    // Quit in batches so the server is not handed 10,000 disconnects in one tick.
    for (let i = 0; i < all.length; i += 500) {
      await Promise.all(all.slice(i, i + 500).map((c) => c.quit(QUIT_TIMEOUT_MS)))
    }
  }
}
