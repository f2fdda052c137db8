/**
 * `npm run bench`: the gateway against MariaDB's own TLS, a bare TCP hop (socat) and plaintext, on this
 * machine, in one run (issue 5).
 *
 * Targets (interleaved round by round, A B C D then D C B A, so drift of a shared machine cancels out):
 *   A plain    direct to MariaDB, no TLS
 *   B tls      direct to MariaDB with its own TLS: the baseline (1.00) of every round
 *   C gateway  client TLS to the gateway (real CLI, generated config), plain TCP to MariaDB
 *   D socat    a bare TCP forwarder, no TLS
 * Loads: sysbench oltp_point_select (text protocol) at 8 and 64 connections; new connections per second
 * (open, TLS, authenticate, close) without and with TLS session resumption; a single-connection bulk read
 * (200 rows of 1 MiB); RSS of the gateway's route child with 1,000 and 10,000 idle TLS connections.
 * CPU is read from /proc for the route's child process (the gateway), socat (with its forked children)
 * and mariadbd, never for the client.
 *
 * Options: --quick (smoke run), --key-type rsa2048|ecdsa-p256, --profile (node --cpu-prof of the route
 * child, one fresh gateway per load, summarised; with perf installed also a native breakdown), --syscalls
 * (with --profile: one more pass per load under `strace -c`, syscalls per query / connection / MiB), --rounds N, --ps-seconds S, --conn-seconds S,
 * --bulk-seconds S, --socat-buffer BYTES (socat -b; default 8192), --threads 8,64, --conn-concurrency N, --idle 1000,10000, --loads ps,conn,bulk,idle,
 * --keep (keep the scratch dir), --json FILE.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { mintLeaf, mintPki, type KeyType } from '../helpers/certs.js'
import { startMariaDb, type MariaDbInstance } from '../helpers/mariadb.js'
import { formatSummary, summarizeProfile, type ProfileSummary } from './cpuprofile-summary.js'
import { bulkLoad, connectLoad, IdlePool } from './loads.js'
import { connect, type Endpoint } from './mini-client.js'
import { formatPerf, perfAvailable, perfRecord, perfSummary, straceAvailable, straceCount, type PerfSummary } from './perf.js'
import { childPids, cpuTimes, rssBytes, treeCpu } from './procstat.js'
import { startGateway, startSocat, type Proc } from './processes.js'
import { pointSelects, sysbenchRun, type SysbenchTarget } from './sysbench.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const NOFILE_WANTED = 65536
const REEXEC_ENV = 'GW_BENCH_REEXEC'

// ---------------------------------------------------------------------------------------------- options

type LoadName = 'ps' | 'conn' | 'bulk' | 'idle'

interface Options {
  quick: boolean
  keyType: KeyType
  rounds: number
  psSeconds: number
  connSeconds: number
  bulkSeconds: number
  bulkMinQueries: number
  threads: number[]
  connConcurrency: number
  idle: number[]
  loads: Set<LoadName>
  profile: boolean
  syscalls: boolean
  /** socat's -b (transfer block size; its default is 8192). */
  socatBuffer?: number
  keep: boolean
  json?: string
  budgetSeconds: number
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick')
  const o: Options = {
    quick,
    keyType: 'rsa2048',
    rounds: 2,
    psSeconds: quick ? 2 : 4,
    connSeconds: quick ? 2 : 3,
    bulkSeconds: quick ? 0 : 2,
    bulkMinQueries: 1,
    threads: [8, 64],
    connConcurrency: 8,
    idle: quick ? [200, 1000] : [1000, 10000],
    loads: new Set(['ps', 'conn', 'bulk', 'idle']),
    profile: false,
    syscalls: false,
    keep: false,
    budgetSeconds: 900,
  }
  const list = (s: string) => s.split(',').filter(Boolean).map(Number)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const v = () => {
      const x = argv[++i]
      if (x === undefined) throw new Error(`${a} needs a value`)
      return x
    }
    switch (a) {
      case '--quick':
        break
      case '--key-type': {
        const k = v()
        if (k !== 'rsa2048' && k !== 'ecdsa-p256') throw new Error('--key-type is rsa2048 or ecdsa-p256')
        o.keyType = k
        break
      }
      case '--rounds':
        o.rounds = Math.max(1, Number(v()))
        break
      case '--ps-seconds':
        o.psSeconds = Number(v())
        break
      case '--conn-seconds':
        o.connSeconds = Number(v())
        break
      case '--bulk-seconds':
        o.bulkSeconds = Number(v())
        break
      case '--threads':
        o.threads = list(v())
        break
      case '--conn-concurrency':
        o.connConcurrency = Number(v())
        break
      case '--idle':
        o.idle = list(v())
        break
      case '--loads':
        o.loads = new Set(v().split(',') as LoadName[])
        break
      case '--profile':
        o.profile = true
        break
      case '--syscalls':
        o.profile = true
        o.syscalls = true
        break
      case '--socat-buffer':
        o.socatBuffer = Number(v())
        break
      case '--keep':
        o.keep = true
        break
      case '--json':
        o.json = path.resolve(v())
        break
      case '--budget-seconds':
        o.budgetSeconds = Number(v())
        break
      case '--help':
        process.stdout.write(`${readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]}*/\n`)
        process.exit(0)
      default:
        throw new Error(`unknown option ${a}`)
    }
  }
  return o
}

// --------------------------------------------------------------------------------------------- results

type TargetId = 'plain' | 'tls' | 'gateway' | 'socat'
const TARGET_LABEL: Record<TargetId, string> = {
  plain: 'A direct plaintext',
  tls: 'B direct MariaDB TLS',
  gateway: 'C gateway (TLS)',
  socat: 'D socat TCP hop',
}
const ALL_TARGETS: TargetId[] = ['plain', 'tls', 'gateway', 'socat']

interface StepResult {
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
  /** CPU seconds of the proxy (gateway route child or socat) during the step; undefined for direct targets. */
  proxyCpu?: number
  dbCpu: number
  note?: string
  /** TLS handshakes that resumed a session (connection loads on TLS targets). */
  resumed?: number
}

interface IdleResult {
  connections: number
  openSeconds: number
  childRss: number
  childRssBefore: number
  dbRss: number
  dbRssBefore: number
  stillOpen: number
}

const results: StepResult[] = []
const idleResults: IdleResult[] = []
let failures = 0
let idleNote = ''

const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`)

// ------------------------------------------------------------------------------------------- the setup

interface Env {
  opts: Options
  dir: string
  db: MariaDbInstance
  gateway: Proc
  socat: Proc
  sslDir: string
  caPem: Buffer
  cert: string
  key: string
  user: string
  password: string
  tableSize: number
}

function endpoint(env: Env, target: TargetId): Endpoint {
  const port = target === 'gateway' ? env.gateway.port : target === 'socat' ? env.socat.port : env.db.port
  const tls = target === 'tls' || target === 'gateway'
  return {
    host: '127.0.0.1',
    port,
    user: env.user,
    password: env.password,
    database: 'sbtest',
    ...(tls ? { tls: { ca: env.caPem, servername: 'localhost' } } : {}),
  }
}

function sysbenchTarget(env: Env, target: TargetId): SysbenchTarget {
  const ep = endpoint(env, target)
  return { host: ep.host, port: ep.port, user: env.user, password: env.password, db: 'sbtest', ssl: Boolean(ep.tls) }
}

function proxyOf(env: Env, target: TargetId): Proc | undefined {
  return target === 'gateway' ? env.gateway : target === 'socat' ? env.socat : undefined
}

/** CPU seconds of what is measured for a target: the gateway's route child, socat with its children. */
function proxyCpuNow(proc: Proc | undefined): number | undefined {
  if (!proc) return undefined
  if (proc.name === 'socat') return treeCpu(proc.measuredPid)
  return cpuTimes(proc.measuredPid)?.self
}

async function settleProxy(proc: Proc | undefined): Promise<void> {
  // socat's per-connection children must have exited and been reaped so their time is in cutime.
  if (proc?.name !== 'socat') return
  const deadline = Date.now() + 3_000
  while (childPids(proc.measuredPid).length > 0 && Date.now() < deadline) await sleep(20)
}

interface Meter {
  start(): void
  stop(): Promise<{ proxyCpu?: number; dbCpu: number }>
}

function meter(env: Env, target: TargetId): Meter {
  const proc = proxyOf(env, target)
  let p0: number | undefined
  let d0 = 0
  let started = false
  return {
    start() {
      started = true
      p0 = proxyCpuNow(proc)
      d0 = cpuTimes(env.db.pid)?.self ?? 0
    },
    async stop() {
      if (!started) throw new Error('meter stopped before it started')
      await settleProxy(proc)
      const p1 = proxyCpuNow(proc)
      const d1 = cpuTimes(env.db.pid)?.self ?? 0
      if (proc && (p0 === undefined || p1 === undefined)) throw new Error(`${proc.name} process (pid ${proc.measuredPid}) is gone`)
      return { proxyCpu: proc ? p1! - p0! : undefined, dbCpu: d1 - d0 }
    },
  }
}

// ------------------------------------------------------------------------------------------- the steps

function order(round: number, targets: TargetId[]): TargetId[] {
  return round % 2 === 0 ? targets : [...targets].reverse()
}

async function step(
  env: Env,
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
    if (!ok) failures++
    if (r.units <= 0 && ok) throw new Error('step measured nothing')
    results.push({ load, target, round, ok, ...r, ...cpu })
    log(
      `${load} | ${TARGET_LABEL[target]} | round ${round + 1}: ${fmtRate(r.rate)} ${r.rateUnit}` +
        (cpu.proxyCpu !== undefined ? `, proxy ${fmtCpu(cpu.proxyCpu / r.units)}/${r.unit}` : '') +
        (r.error ? ` FAILED: ${r.error}` : '')
    )
  } catch (err) {
    failures++
    const msg = (err as Error).message
    log(`${load} | ${TARGET_LABEL[target]} | round ${round + 1}: FAILED: ${msg}`)
    results.push({ load, target, round, ok: false, error: msg.replace(/\s+/g, ' ').slice(0, 200), rate: NaN, p50: NaN, p95: NaN, p99: NaN, units: 0, rateUnit: '', unit: 'query', dbCpu: NaN })
  }
}

async function pointSelectStep(env: Env, target: TargetId, threads: number, round: number): Promise<void> {
  await step(env, `point select, ${threads} conns`, target, round, async (m) => {
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

async function connectStep(env: Env, target: TargetId, resume: boolean, round: number): Promise<void> {
  const tlsTarget = target === 'tls' || target === 'gateway'
  // A and D have no TLS: they share the full-handshake load so their rate is compared with B's.
  const load = resume ? 'new conns, TLS resumed' : 'new conns, full TLS handshake (A, D: no TLS)'
  await step(env, load, target, round, async (m) => {
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

const BULK_ROWS = 200
const BULK_SQL = `SELECT REPEAT('x', 1048576) AS b FROM seq_1_to_${BULK_ROWS}`

async function bulkStep(env: Env, target: TargetId, round: number): Promise<void> {
  await step(env, `bulk read ${BULK_ROWS} x 1 MiB, 1 conn`, target, round, async (m) => {
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

async function idleStep(env: Env): Promise<void> {
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
        idleResults.push(r)
        log(
          `idle ${n}: gateway child RSS ${mib(r.childRss)} (before ${mib(childRssBefore)}, ` +
            `${((r.childRss - childRssBefore) / n / 1024).toFixed(1)} KiB/conn), opened in ${seconds.toFixed(1)} s, ${r.stillOpen} still open`
        )
        if (r.stillOpen !== n) {
          failures++
          log(`idle ${n}: only ${r.stillOpen} connections still open`)
        }
      } catch (err) {
        failures++
        log(`idle ${n}: FAILED: ${(err as Error).message}`)
        break
      }
    }
  } finally {
    await pool.closeAll()
  }
}

// --------------------------------------------------------------------------------------------- formatting

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`
function fmtRate(x: number): string {
  if (!Number.isFinite(x)) return 'n/a'
  return x >= 100 ? x.toFixed(0) : x.toFixed(1)
}
function fmtMs(x: number): string {
  if (!Number.isFinite(x)) return 'n/a'
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)
}
function fmtCpu(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'n/a'
  const us = seconds * 1e6
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} us`
}
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN)

function table(): string {
  const loads = [...new Set(results.map((r) => r.load))]
  const lines = [
    '| load | target | throughput | p50 ms | p95 ms | p99 ms | vs B (per round) | proxy CPU / unit | mariadbd CPU / unit | notes |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |',
  ]
  for (const load of loads) {
    const rows = results.filter((r) => r.load === load)
    for (const target of ALL_TARGETS) {
      const mine = rows.filter((r) => r.target === target)
      if (mine.length === 0) continue
      const good = mine.filter((r) => r.ok)
      if (good.length === 0) {
        lines.push(`| ${load} | ${TARGET_LABEL[target]} | FAILED | | | | | | | ${mine[0].error ?? ''} |`)
        continue
      }
      const ratios: number[] = []
      for (const r of good) {
        const base = rows.find((b) => b.target === 'tls' && b.round === r.round && b.ok)
        if (base) ratios.push(r.rate / base.rate)
      }
      const units = good.reduce((a, r) => a + r.units, 0)
      const proxyCpu = good.every((r) => r.proxyCpu !== undefined) && good.length ? good.reduce((a, r) => a + r.proxyCpu!, 0) : undefined
      const dbCpu = good.reduce((a, r) => a + r.dbCpu, 0)
      const unit = good[0]?.unit ?? ''
      const ratio = ratios.length ? `${mean(ratios).toFixed(2)}x (${ratios.map((x) => x.toFixed(2)).join(' / ')})` : 'n/a'
      const failed = mine.length - good.length
      const noteList = [...new Set(good.map((r) => r.note).filter(Boolean))]
      if (good.some((r) => r.resumed !== undefined)) {
        noteList.push(`TLS resumed ${((100 * good.reduce((a, r) => a + (r.resumed ?? 0), 0)) / Math.max(1, units)).toFixed(0)}%`)
      }
      const notes = noteList.join('; ')
      lines.push(
        `| ${load} | ${TARGET_LABEL[target]} | ${fmtRate(mean(good.map((r) => r.rate)))} ${good[0]?.rateUnit ?? ''} | ` +
          `${fmtMs(mean(good.map((r) => r.p50)))} | ${fmtMs(mean(good.map((r) => r.p95)))} | ${fmtMs(mean(good.map((r) => r.p99)))} | ` +
          `${target === 'tls' ? '1.00 (baseline)' : ratio} | ${proxyCpu !== undefined ? `${fmtCpu(proxyCpu / units)} /${unit}` : '-'} | ` +
          `${fmtCpu(dbCpu / units)} /${unit} | ${[notes, failed ? `${failed} FAILED: ${mine.find((r) => !r.ok)?.error}` : ''].filter(Boolean).join('; ')} |`
      )
    }
  }
  return lines.join('\n')
}

function idleTable(freshRss: number): string {
  const lines = [
    `Gateway route child RSS right after start (no connection yet): ${mib(freshRss)}`,
    '',
    '| idle TLS conns via gateway | route child RSS | before (0 conns, after the loads) | per conn above it | per conn, marginal (from previous row) | mariadbd RSS growth per conn | open time | still open |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  let prev: IdleResult | undefined
  for (const r of idleResults) {
    const marginal = prev ? `${((r.childRss - prev.childRss) / (r.connections - prev.connections) / 1024).toFixed(1)} KiB` : '-'
    prev = r
    lines.push(
      `| ${r.connections} | ${mib(r.childRss)} | ${mib(r.childRssBefore)} | ${((r.childRss - r.childRssBefore) / r.connections / 1024).toFixed(1)} KiB | ${marginal} | ` +
        `${((r.dbRss - r.dbRssBefore) / r.connections / 1024).toFixed(1)} KiB | ${r.openSeconds.toFixed(1)} s | ${r.stillOpen} |`
    )
  }
  return lines.join('\n')
}

function hardwareLine(): string {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU'
  return `${os.availableParallelism()} cores (nproc), ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `Linux ${os.release()}, Node ${process.version}`
}

/** The gateway build measured: commit, and whether src/ had uncommitted changes (others may be editing it). */
function gatewayRevision(): string {
  try {
    const head = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 10_000 }).trim()
    const dirty = execFileSync('git', ['-C', REPO, 'status', '--porcelain', '--', 'src', 'bin'], { encoding: 'utf8', timeout: 10_000 }).trim()
    return dirty ? `${head} + uncommitted changes in ${dirty.split('\n').length} file(s) under src/ or bin/` : head
  } catch {
    return 'unknown (not a git checkout)'
  }
}

function versions(): string {
  const v = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000 }).trim().split('\n')[0]
    } catch {
      return `${cmd}: unknown`
    }
  }
  const mariadbd = existsSync('/usr/sbin/mariadbd') ? '/usr/sbin/mariadbd' : 'mariadbd'
  return [v(mariadbd, ['--version']), v('sysbench', ['--version']), v('socat', ['-V']).replace(/^socat by.*/, '') || v('socat', ['-V'])]
    .filter(Boolean)
    .join('; ')
}

/**
 * Does mysql2 resume TLS sessions? It keeps sessions per `ssl` options object (lib/tls_session_cache.js),
 * so three connections sharing one object should resume from the second on; one object each never does.
 */
async function mysql2Resumes(env: Env): Promise<string> {
  const { default: mysql } = await import('mysql2/promise')
  const parts: string[] = []
  for (const t of ['tls', 'gateway'] as const) {
    const ep = endpoint(env, t)
    const shared = { ca: env.caPem }
    const seen: string[] = []
    for (const mode of ['shared', 'fresh'] as const) {
      const flags: boolean[] = []
      for (let i = 0; i < 3; i++) {
        const conn = await mysql.createConnection({
          host: ep.host,
          port: ep.port,
          user: env.user,
          password: env.password,
          database: 'sbtest',
          ssl: mode === 'shared' ? shared : { ca: env.caPem },
          connectTimeout: 10_000,
        })
        // The promise wrapper keeps the core connection in .connection (not in its typings); its stream is the TLSSocket.
        const stream = (conn as unknown as { connection: { stream: { isSessionReused?: () => boolean } } }).connection.stream
        flags.push(Boolean(stream.isSessionReused?.()))
        await conn.end()
      }
      seen.push(`${mode} ssl object ${flags.map((f) => (f ? 'R' : 'F')).join('')}`)
    }
    parts.push(`${TARGET_LABEL[t]}: ${seen.join(', ')}`)
  }
  return `mysql2 resumption check (3 connections each; R = resumed, F = full handshake): ${parts.join('; ')}`
}

// ----------------------------------------------------------------------------------------------- profile

interface ProfileOutcome {
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
async function profileRuns(env: Env, outDir: string): Promise<ProfileOutcome[]> {
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

// -------------------------------------------------------------------------------------------------- main

function ensureTools(): void {
  for (const script of ['scripts/ensure-mariadb.sh', 'scripts/ensure-bench-tools.sh']) {
    const r = spawnSync('bash', [path.join(REPO, script)], { stdio: 'inherit', timeout: 1_900_000 })
    if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status})`)
  }
}

/** Re-runs this process under a shell that raised the open-file limit (10,000 idle connections need ~2 fds each in the gateway). */
function reexecWithFileLimit(): boolean {
  if (process.env[REEXEC_ENV]) return false
  const limits = readFileSync('/proc/self/limits', 'utf8')
  const soft = Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 0)
  if (soft >= NOFILE_WANTED) return false
  const script = `ulimit -n ${NOFILE_WANTED} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`
  const child = spawn('bash', ['-c', script, 'bash', process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [REEXEC_ENV]: '1' },
  })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig))
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 1) : 1)))
  return true
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2))
  const t0 = Date.now()
  const loadAtStart = os.loadavg().map((x) => x.toFixed(1)).join(' ')
  const nofile = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0)
  // The gateway holds two descriptors per session (client and backend legs) and inherits this limit; where
  // the hard limit cannot be raised (no CAP_SYS_RESOURCE), the largest idle step is capped to fit.
  const idleCap = Math.floor((nofile - 200) / 2)
  if (opts.idle.some((n) => n > idleCap)) {
    idleNote = `idle steps capped at ${idleCap} connections: the open-file limit is ${nofile} and the gateway needs 2 descriptors per session`
    log(idleNote)
    opts.idle = [...new Set(opts.idle.map((n) => Math.min(n, idleCap)))]
  }
  const maxIdle = opts.loads.has('idle') ? Math.max(0, ...opts.idle) : 0
  ensureTools()
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const outDir = path.join(REPO, '.tmp', 'bench', stamp)
  mkdirSync(outDir, { recursive: true })
  // Short base path: MariaDB's Unix socket path must stay under 108 bytes.
  const dir = path.join(os.tmpdir(), `gwb-${process.pid}-${Date.now().toString(36)}`)
  mkdirSync(dir, { recursive: true })
  const cleanups: Array<() => Promise<void>> = []
  let cleaning: Promise<void> | undefined
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const c of cleanups.reverse()) await c().catch((e) => log(`cleanup: ${(e as Error).message}`))
      if (!opts.keep) rmSync(dir, { recursive: true, force: true })
    })())
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping`)
      void cleanup().then(() => process.exit(130))
    })
  }
  const watchdog = setTimeout(() => {
    log(`budget of ${opts.budgetSeconds} s exceeded: aborting`)
    void cleanup().then(() => process.exit(124))
  }, opts.budgetSeconds * 1000)
  watchdog.unref()

  try {
    log(`scratch dir ${dir}; key type ${opts.keyType}; ${opts.quick ? 'quick' : 'full'} run`)
    const pki = await mintPki(path.join(dir, 'pki'), { keyType: opts.keyType })
    const clientLeaf = await mintLeaf(pki, 'sysbench', { client: true })
    const sslDir = path.join(dir, 'sysbench-ssl')
    mkdirSync(sslDir)
    copyFileSync(clientLeaf.cert, path.join(sslDir, 'client-cert.pem'))
    copyFileSync(clientLeaf.key, path.join(sslDir, 'client-key.pem'))
    copyFileSync(pki.caCert, path.join(sslDir, 'cacert.pem'))

    const maxConns = maxIdle + 600
    const db = await startMariaDb({
      baseDir: path.join(dir, 'db'),
      tls: { ca: pki.caCert, cert: pki.cert, key: pki.key },
      extraArgs: [
        `--max-connections=${maxConns}`,
        `--open-files-limit=${Math.min(nofile, maxConns * 2 + 2_000)}`,
        '--back-log=2048',
        '--thread-cache-size=256',
        '--innodb-buffer-pool-size=256M',
      ],
      startTimeoutMs: 60_000,
    })
    cleanups.push(() => db.stop())
    log(`mariadbd pid ${db.pid} on 127.0.0.1:${db.port}`)
    const user = 'bench'
    const password = 'bench-' + Math.random().toString(36).slice(2)
    await db.query('CREATE DATABASE sbtest')
    await db.query("CREATE USER 'bench'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD(?)", [password])
    await db.query("GRANT ALL PRIVILEGES ON sbtest.* TO 'bench'@'%'")
    const tableSize = 10_000
    const prep = await sysbenchRun(
      { host: '127.0.0.1', port: db.port, user, password, db: 'sbtest', ssl: false },
      { command: 'prepare', threads: 1, seconds: 60, tableSize, sslDir }
    )
    if (prep.code !== 0) throw new Error(`sysbench prepare failed:\n${prep.out}`)

    const gateway = await startGateway({
      dir,
      backendPort: db.port,
      cert: pki.cert,
      key: pki.key,
      maxConnections: maxConns,
      tag: 'main',
    })
    cleanups.push(() => gateway.stop())
    const freshRss = rssBytes(gateway.measuredPid) ?? NaN
    log(`gateway supervisor pid ${gateway.pid}, route child pid ${gateway.measuredPid} on 127.0.0.1:${gateway.port}`)
    const socat = await startSocat(dir, db.port, opts.socatBuffer)
    cleanups.push(() => socat.stop())
    log(`socat pid ${socat.pid} on 127.0.0.1:${socat.port}`)

    const env: Env = { opts, dir, db, gateway, socat, sslDir, caPem: readFileSync(pki.caCert), cert: pki.cert, key: pki.key, user, password, tableSize }

    // Every target answers, and the TLS ones really are on TLS.
    const tlsInfo: string[] = []
    for (const t of ALL_TARGETS) {
      const c = await connect(endpoint(env, t), { timeoutMs: 10_000 })
      const r = await c.query('SELECT 1', 10_000)
      if (r.rows !== 1) throw new Error(`${t}: SELECT 1 returned ${r.rows} rows`)
      if (c.protocol) tlsInfo.push(`${TARGET_LABEL[t]}: ${c.protocol} ${c.cipher}`)
      await c.quit(2_000)
    }
    log(`TLS as negotiated by the bench client: ${tlsInfo.join('; ')}`)
    const mysql2Note = await mysql2Resumes(env)
    log(mysql2Note)

    // Warm-up (JIT, buffer pool, thread cache); not measured.
    for (const t of ALL_TARGETS) {
      await pointSelects(sysbenchTarget(env, t), { threads: 8, seconds: 1, tableSize, sslDir }).catch((e) =>
        log(`warm-up ${t}: ${(e as Error).message}`)
      )
    }

    for (let round = 0; round < opts.rounds && opts.loads.has('ps'); round++) {
      for (const threads of opts.threads) {
        for (const t of order(round, ALL_TARGETS)) await pointSelectStep(env, t, threads, round)
      }
    }
    if (opts.loads.has('conn')) {
      for (let round = 0; round < opts.rounds; round++) {
        for (const t of order(round, ALL_TARGETS)) await connectStep(env, t, false, round)
        for (const t of order(round, ['tls', 'gateway'])) await connectStep(env, t, true, round)
      }
    }
    if (opts.loads.has('bulk')) {
      for (let round = 0; round < opts.rounds; round++) {
        for (const t of order(round, ALL_TARGETS)) await bulkStep(env, t, round)
      }
    }
    if (opts.loads.has('idle')) await idleStep(env)

    let profiles: Awaited<ReturnType<typeof profileRuns>> = []
    if (opts.profile) profiles = await profileRuns(env, path.join(outDir, 'profiles'))

    const elapsed = (Date.now() - t0) / 1000
    const report = [
      '',
      `# mysql-tls-gateway bench, ${new Date().toISOString()}`,
      '',
      `Command: npm run bench -- ${process.argv.slice(2).join(' ')}`.trimEnd(),
      `Hardware: ${hardwareLine()}`,
      `Software: ${versions()}`,
      `Gateway revision: ${gatewayRevision()}; machine load average at start ${loadAtStart}, at end ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`,
      `Certificates: ${opts.keyType} (MariaDB and the gateway use the same server certificate). ${tlsInfo.join('; ')}`,
      mysql2Note,
      ...(opts.socatBuffer ? [`socat runs with -b ${opts.socatBuffer} (its default transfer block is 8192 bytes).`] : []),
      `Durations: point selects ${opts.psSeconds} s, new connections ${opts.connSeconds} s at concurrency ${opts.connConcurrency}, ` +
        `bulk >= ${opts.bulkMinQueries} queries and >= ${opts.bulkSeconds} s; ${opts.rounds} rounds (A B C D, then D C B A); elapsed ${elapsed.toFixed(0)} s`,
      '',
      table(),
      '',
      ...(idleResults.length ? [idleTable(freshRss), ...(idleNote ? ['', `Note: ${idleNote}.`] : []), ''] : []),
      'Throughput and latency are means over the rounds; "vs B" is the throughput ratio to direct MariaDB TLS in the same round (mean, then each round).',
      'proxy CPU = utime+stime of the gateway route child (C) or of socat and its forked children (D) over the step, divided by the queries / connections / MiB;',
      'mariadbd CPU likewise for the server. Point-select CPU is counted from sysbench\'s "Threads started!" (connections open) to its exit.',
      'Latency: point selects per query (sysbench histogram), new connections from TCP connect to auth OK, bulk per 200 MiB query.',
      ...(failures ? ['', `${failures} step(s) FAILED`] : []),
    ]
    for (const p of profiles) {
      report.push('', `## CPU profile: ${p.load}${p.perUnit ? `, ${p.perUnit}` : ''}`, '```')
      report.push(p.summary ? formatSummary(p.summary, path.relative(REPO, p.summary.file)) : `FAILED: ${p.error}`)
      if (p.perf) report.push('', 'perf (native, same process, middle of the load):', formatPerf(p.perf))
      if (p.perfError) report.push('', `perf: ${p.perfError}`)
      if (p.syscalls) report.push('', p.syscalls)
      report.push('```')
    }
    const text = report.join('\n')
    process.stdout.write(`${text}\n`)
    writeFileSync(path.join(outDir, 'report.md'), `${text}\n`)
    const json = { date: new Date().toISOString(), options: { ...opts, loads: [...opts.loads] }, hardware: hardwareLine(), results, idleResults, freshRss, profiles }
    writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(json, null, 2))
    if (opts.json) writeFileSync(opts.json, JSON.stringify(json, null, 2))
    log(`report and results in ${path.relative(REPO, outDir)}/`)
    return failures > 0 ? 1 : 0
  } finally {
    clearTimeout(watchdog)
    await cleanup()
  }
}

if (!reexecWithFileLimit()) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      log(`FAILED: ${(err as Error).stack ?? err}`)
      process.exit(1)
    }
  )
}
