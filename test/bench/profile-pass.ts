/**
 * The --profile pass: where the gateway's CPU goes per load (V8 profile, perf when installed) and, with
 * --syscalls, the syscalls per unit of work. It runs after the measured rounds, on gateways of its own,
 * because profilers and strace slow the process they watch and would distort the table.
 */
import { mkdirSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { summarizeProfile, type ProfileSummary } from './cpuprofile-summary.js'
import { bulkLoad, connectLoad } from './loads.js'
import { log } from './log.js'
import type { Endpoint } from './mini-client.js'
import { perfAvailable, perfRecord, perfSummary, straceAvailable, straceCount, type PerfSummary } from './perf.js'
import { startGateway } from './processes.js'
import { cpuTimes } from './procstat.js'
import { REPO } from './repo.js'
import { fmtCpu } from './report.js'
import { BULK_ROWS, BULK_SQL } from './steps.js'
import { pointSelects } from './sysbench.js'
import { endpoint, sysbenchTarget, type Env } from './targets.js'

export interface ProfileOutcome {
  load: string
  summary?: ProfileSummary
  perf?: PerfSummary
  perfError?: string
  error?: string
  perUnit?: string
  /** Syscalls per unit of work, from a separate pass under `strace -c` (--syscalls). */
  syscalls?: string
}

const monoUs = () => Number(process.hrtime.bigint() / 1000n)

/**
 * One fresh gateway per load, started with `node --cpu-prof` (the supervisor's execArgv is inherited by
 * the route child it forks); the profile is cut to the load's time window. With perf installed, the same
 * child is also sampled natively while the load runs.
 */
export async function profileRuns(env: Env, outDir: string): Promise<ProfileOutcome[]> {
  const out: ProfileOutcome[] = []
  const withPerf = perfAvailable()
  if (!withPerf) log('perf not installed: native breakdown skipped (apt-get install linux-perf)')
  const psThreads = env.opts.threads[0] ?? 8
  type ProfileLoad = {
    load: string
    tag: string
    /** Runs the load for `seconds`; calls `markStart` when the measured part begins (after connection setup). */
    run: (ep: Endpoint, seconds: number, markStart: () => void) => Promise<{ units: number; unit: string }>
  }
  const conn = (resume: boolean): ProfileLoad['run'] => async (ep, seconds, markStart) => {
    markStart()
    const r = await connectLoad(ep, { seconds, concurrency: env.opts.connConcurrency, resume })
    return { units: r.connections, unit: 'conn' }
  }
  const loads: ProfileLoad[] = [
    {
      load: `point select, ${psThreads} conns`,
      tag: 'ps',
      run: async (ep, seconds, markStart) => {
        const r = await pointSelects({ ...sysbenchTarget(env, 'gateway'), port: ep.port }, {
          threads: psThreads,
          seconds,
          tableSize: env.tableSize,
          sslDir: env.sslDir,
          onStarted: markStart,
        })
        return { units: r.queries, unit: 'query' }
      },
    },
    { load: 'new conns, full TLS handshake', tag: 'conn-full', run: conn(false) },
    { load: 'new conns, TLS resumed', tag: 'conn-resume', run: conn(true) },
    {
      load: `bulk read ${BULK_ROWS} x 1 MiB`,
      tag: 'bulk',
      run: async (ep, seconds, markStart) => {
        const r = await bulkLoad(ep, { sql: BULK_SQL, rows: BULK_ROWS, seconds, minQueries: 1, maxQueries: 50, queryTimeoutMs: 60_000, onReady: markStart })
        return { units: r.mib, unit: 'MiB' }
      },
    },
  ]
  const seconds = Math.max(3, env.opts.psSeconds)
  for (const l of loads) {
    const profDir = path.join(outDir, l.tag)
    mkdirSync(profDir, { recursive: true })
    let gw: Awaited<ReturnType<typeof startGateway>> | undefined
    try {
      gw = await startGateway({
        dir: env.dir,
        backendPort: env.db.port,
        cert: env.cert,
        key: env.key,
        maxConnections: 1000,
        tag: `profile-${l.tag}`,
        nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=250'],
      })
      const ep = { ...endpoint(env, 'gateway'), port: gw.port }
      const childPid = gw.measuredPid
      // Warm-up of this fresh process (JIT, pools), outside the profile window, like the warm-up of the main run.
      await l.run(ep, 2, () => {})
      let c0 = NaN
      let startUs = NaN
      let perf: Promise<string | undefined> = Promise.resolve(undefined)
      const markStart = () => {
        c0 = cpuTimes(childPid)?.self ?? NaN
        startUs = monoUs()
        // perf samples the middle of the measured part: it starts late and stops early.
        if (withPerf) perf = sleep(300).then(() => perfRecord(childPid, Math.max(1, seconds - 1), path.join(profDir, 'perf.data')))
        perf.catch(() => {})
      }
      const r = await l.run(ep, seconds, markStart)
      const endUs = monoUs()
      const c1 = cpuTimes(childPid)?.self ?? NaN
      let perfSum: PerfSummary | undefined
      let perfError: string | undefined
      try {
        const data = await perf
        if (data) perfSum = perfSummary(data, 20)
      } catch (e) {
        perfError = (e as Error).message
      }
      await gw.stop()
      gw = undefined
      const file = await findProfile(profDir, childPid)
      const summary = summarizeProfile(file, 20, { startUs, endUs })
      const syscalls = env.opts.syscalls && straceAvailable() ? await syscallPass(env, l, seconds) : undefined
      out.push({ load: l.load, summary, perf: perfSum, perfError, syscalls, perUnit: `${fmtCpu((c1 - c0) / r.units)}/${r.unit} under the profilers` })
      log(`profile ${l.tag}: ${path.relative(REPO, file)}`)
    } catch (err) {
      out.push({ load: l.load, error: (err as Error).message })
      log(`profile ${l.tag} FAILED: ${(err as Error).message}`)
    } finally {
      await gw?.stop()
    }
  }
  return out
}

/**
 * Syscalls per unit of work: a fresh gateway without profilers (whose SIGPROF sampling would show up as
 * syscalls), warmed up, then one pass of the load with `strace -c` attached for its middle. The units are
 * counted by MariaDB over exactly the traced window (Com_select, Connections, Bytes_sent), because strace
 * slows the gateway and the load's own totals would not match the window.
 */
async function syscallPass(env: Env, l: { tag: string; run: (ep: Endpoint, seconds: number, markStart: () => void) => Promise<unknown> }, seconds: number): Promise<string> {
  const gw = await startGateway({ dir: env.dir, backendPort: env.db.port, cert: env.cert, key: env.key, maxConnections: 1000, tag: `strace-${l.tag}` })
  try {
    const ep = { ...endpoint(env, 'gateway'), port: gw.port }
    await l.run(ep, 2, () => {})
    const [unit, variable, scale] =
      l.tag === 'ps' ? ['query', 'Com_select', 1] : l.tag === 'bulk' ? ['MiB', 'Bytes_sent', 1 / 1048576] : ['conn', 'Connections', 1]
    let counting: Promise<{ rows: Array<{ syscall: string; calls: number; errors: number }>; units: number }> | undefined
    await l.run(ep, seconds + 2, () => {
      counting = (async () => {
        const before = Number(await env.db.statusVar(variable))
        const rows = await straceCount(gw.measuredPid, seconds)
        const after = Number(await env.db.statusVar(variable))
        return { rows, units: (after - before) * scale }
      })()
      counting.catch(() => {})
    })
    const { rows, units } = await counting!
    if (!(units > 0)) return `syscalls: no ${unit} counted in the traced window`
    return (
      `syscalls per ${unit} (strace -c over ${units.toFixed(0)} ${unit}s, no profiler attached): ` +
      rows
        .filter((x) => x.calls / units >= 0.05)
        .map((x) => `${x.syscall} ${(x.calls / units).toFixed(2)}${x.errors ? ` (${((100 * x.errors) / x.calls).toFixed(0)}% failing)` : ''}`)
        .join(', ')
    )
  } catch (e) {
    return `syscalls: strace pass failed: ${(e as Error).message}`
  } finally {
    await gw.stop()
  }
}

async function findProfile(dir: string, pid: number): Promise<string> {
  // Node names them CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile and writes them as the process exits.
  const deadline = Date.now() + 10_000
  for (;;) {
    const f = readdirSync(dir).find((n) => n.endsWith('.cpuprofile') && n.split('.')[3] === String(pid))
    if (f) return path.join(dir, f)
    if (Date.now() > deadline) throw new Error(`no .cpuprofile for route child ${pid} in ${dir} (files: ${readdirSync(dir).join(', ') || 'none'})`)
    await sleep(100)
  }
}
