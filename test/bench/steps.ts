/**
 * The measured steps: one load against one target in one round, metered over its measured part only
 * (connection setup is left out unless connecting is the load) and recorded for the table. A failing
 * step is recorded and counted, never thrown, so one broken target still leaves a report of the others.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { meter, type Meter } from './cpu-meter.js'
import { bulkLoad, connectLoad, IdlePool } from './loads.js'
import { log } from './log.js'
import { rssBytes } from './procstat.js'
import { fmtCpu, fmtRate, mib } from './report.js'
import { pointSelects } from './sysbench.js'
import { endpoint, sysbenchTarget, TARGET_LABEL, type Env, type TargetId } from './targets.js'

export interface StepResult {
  load: string
  unit: 'query' | 'conn' | 'MiB'
  rateUnit: string
  target: TargetId
  round: number
  ok: boolean
  error?: string
  rate: number
  p50: number
  p95: number
  p99: number
  units: number
  /** CPU seconds of the proxy (gateway route child, socat or the Node.js hop) during the step; undefined for direct targets. */
  proxyCpu?: number
  dbCpu: number
  note?: string
  /** TLS handshakes that resumed a session (connection loads on TLS targets). */
  resumed?: number
}

export interface IdleResult {
  connections: number
  openSeconds: number
  childRss: number
  childRssBefore: number
  dbRss: number
  dbRssBefore: number
  stillOpen: number
}

/** What the steps record, for the report and results.json. */
export interface Recorded {
  results: StepResult[]
  idleResults: IdleResult[]
  /** Failed steps, and idle steps that lost connections: any makes the bench exit 1. */
  failures: number
}

async function step(
  env: Env,
  rec: Recorded,
  load: string,
  target: TargetId,
  round: number,
  run: (m: Meter) => Promise<Omit<StepResult, 'load' | 'target' | 'round' | 'ok' | 'proxyCpu' | 'dbCpu'>>
): Promise<void> {
  const m = meter(env, target)
  try {
    const r = await run(m)
    const cpu = await m.stop()
    const ok = !r.error
    if (!ok) rec.failures++
    if (r.units <= 0 && ok) throw new Error('step measured nothing')
    rec.results.push({ load, target, round, ok, ...r, ...cpu })
    log(
      `${load} | ${TARGET_LABEL[target]} | round ${round + 1}: ${fmtRate(r.rate)} ${r.rateUnit}` +
        (cpu.proxyCpu !== undefined ? `, proxy ${fmtCpu(cpu.proxyCpu / r.units)}/${r.unit}` : '') +
        (r.error ? ` FAILED: ${r.error}` : '')
    )
  } catch (err) {
    rec.failures++
    const msg = (err as Error).message
    log(`${load} | ${TARGET_LABEL[target]} | round ${round + 1}: FAILED: ${msg}`)
    rec.results.push({ load, target, round, ok: false, error: msg.replace(/\s+/g, ' ').slice(0, 200), rate: NaN, p50: NaN, p95: NaN, p99: NaN, units: 0, rateUnit: '', unit: 'query', dbCpu: NaN })
  }
}

export async function pointSelectStep(env: Env, rec: Recorded, target: TargetId, threads: number, round: number): Promise<void> {
  await step(env, rec, `point select, ${threads} conns`, target, round, async (m) => {
    const r = await pointSelects(sysbenchTarget(env, target), {
      threads,
      seconds: env.opts.psSeconds,
      tableSize: env.tableSize,
      sslDir: env.sslDir,
      onStarted: () => m.start(),
    })
    return {
      unit: 'query',
      rateUnit: 'q/s',
      rate: r.qps,
      p50: r.p50,
      p95: r.p95,
      p99: r.p99,
      units: r.queries,
      ...(r.errors > 0 ? { error: `${r.errors} query errors` } : {}),
    }
  })
}

export async function connectStep(env: Env, rec: Recorded, target: TargetId, resume: boolean, round: number): Promise<void> {
  const tlsTarget = target === 'tls' || target === 'gateway'
  // A, D and E have no TLS: they share the full-handshake load so their rate is compared with B's.
  const noTls = env.nodeHop ? 'A, D, E' : 'A, D'
  const load = resume ? 'new conns, TLS resumed' : `new conns, full TLS handshake (${noTls}: no TLS)`
  await step(env, rec, load, target, round, async (m) => {
    m.start()
    const r = await connectLoad(endpoint(env, target), {
      seconds: env.opts.connSeconds,
      concurrency: env.opts.connConcurrency,
      resume,
    })
    return {
      unit: 'conn',
      rateUnit: 'conn/s',
      rate: r.perSecond,
      p50: r.p50,
      p95: r.p95,
      p99: r.p99,
      units: r.connections,
      ...(tlsTarget ? { resumed: r.resumed } : {}),
      ...(r.errors > 0 ? { error: `${r.errors} failed connections (first: ${r.firstError})` } : {}),
    }
  })
}

export const BULK_ROWS = 200
export const BULK_SQL = `SELECT REPEAT('x', 1048576) AS b FROM seq_1_to_${BULK_ROWS}`

export async function bulkStep(env: Env, rec: Recorded, target: TargetId, round: number): Promise<void> {
  await step(env, rec, `bulk read ${BULK_ROWS} x 1 MiB, 1 conn`, target, round, async (m) => {
    const r = await bulkLoad(endpoint(env, target), {
      sql: BULK_SQL,
      rows: BULK_ROWS,
      seconds: env.opts.bulkSeconds,
      minQueries: env.opts.bulkMinQueries,
      maxQueries: 50,
      queryTimeoutMs: 60_000,
      onReady: () => m.start(),
    })
    return { unit: 'MiB', rateUnit: 'MiB/s', rate: r.mibPerSecond, p50: r.p50, p95: r.p95, p99: r.p99, units: r.mib, note: `${r.queries} queries` }
  })
}

export async function idleStep(env: Env, rec: Recorded): Promise<void> {
  const pool = new IdlePool(endpoint(env, 'gateway'))
  const childPid = env.gateway.measuredPid
  await sleep(1_000)
  const childRssBefore = rssBytes(childPid) ?? NaN
  const dbRssBefore = rssBytes(env.db.pid) ?? NaN
  try {
    for (const n of env.opts.idle) {
      try {
        const { seconds } = await pool.growTo(n, 64, 150_000)
        await sleep(2_000)
        const r: IdleResult = {
          connections: n,
          openSeconds: seconds,
          childRss: rssBytes(childPid) ?? NaN,
          childRssBefore,
          dbRss: rssBytes(env.db.pid) ?? NaN,
          dbRssBefore,
          stillOpen: pool.openCount(),
        }
        rec.idleResults.push(r)
        log(
          `idle ${n}: gateway child RSS ${mib(r.childRss)} (before ${mib(childRssBefore)}, ` +
            `${((r.childRss - childRssBefore) / n / 1024).toFixed(1)} KiB/conn), opened in ${seconds.toFixed(1)} s, ${r.stillOpen} still open`
        )
        if (r.stillOpen !== n) {
          rec.failures++
          log(`idle ${n}: only ${r.stillOpen} connections still open`)
        }
      } catch (err) {
        rec.failures++
        log(`idle ${n}: FAILED: ${(err as Error).message}`)
        break
      }
    }
  } finally {
    await pool.closeAll()
  }
}
