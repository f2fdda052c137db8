/**
 * `npm run bench`: the gateway against MariaDB's own TLS, a bare TCP hop (socat) and plaintext, on this
 * machine, in one run (issue 5).
 *
 * Targets (interleaved round by round, A B C D (E) then (E) D C B A, so drift of a shared machine cancels out):
 *   A plain    direct to MariaDB, no TLS
 *   B tls      direct to MariaDB with its own TLS: the baseline (1.00) of every round
 *   C gateway  client TLS to the gateway (real CLI, generated config), plain TCP to MariaDB
 *   D socat    a bare TCP forwarder, no TLS
 *   E nodehop  a minimal Node.js TCP forwarder (node-hop.ts), no TLS: the gateway's floor (--no-node-hop skips it)
 * Loads: sysbench oltp_point_select (text protocol) at 8 and 64 connections; new connections per second
 * (open, TLS, authenticate, close) without and with TLS session resumption; a single-connection bulk read
 * (200 rows of 1 MiB); RSS of the gateway's route child with 1,000 and 10,000 idle TLS connections.
 * CPU is read from /proc for the route's child process (the gateway), socat (with its forked children),
 * the Node.js hop and mariadbd, never for the client.
 *
 * Options: --quick (smoke run), --key-type rsa2048|ecdsa-p256, --profile (node --cpu-prof of the route
 * child, one fresh gateway per load, summarised; with perf installed also a native breakdown), --syscalls
 * (with --profile: one more pass per load under `strace -c`, syscalls per query / connection / MiB), --rounds N, --ps-seconds S, --conn-seconds S,
 * --bulk-seconds S, --socat-buffer BYTES (socat -b; default 8192), --threads 8,64, --conn-concurrency N, --idle 1000,10000, --loads ps,conn,bulk,idle,
 * --no-node-hop (skip target E), --keep (keep the scratch dir), --json FILE.
 */
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { mintLeaf, mintPki } from '../helpers/certs.js'
import { startMariaDb } from '../helpers/mariadb.js'
import { log } from './log.js'
import { connect } from './mini-client.js'
import { parseOptions } from './options.js'
import { startGateway, startNodeHop, startSocat } from './processes.js'
import { rssBytes } from './procstat.js'
import { profileRuns } from './profile-pass.js'
import { REPO } from './repo.js'
import { hardwareLine, markdownReport } from './report.js'
import { mysql2Resumes } from './resumption-check.js'
import { bulkStep, connectStep, idleStep, pointSelectStep, type Recorded } from './steps.js'
import { pointSelects, sysbenchRun } from './sysbench.js'
import { endpoint, sysbenchTarget, TARGET_LABEL, targetsOf, type Env, type TargetId } from './targets.js'

const NOFILE_WANTED = 65536
const REEXEC_ENV = 'GW_BENCH_REEXEC'

/** A B C D (E) in even rounds, (E) D C B A in odd ones: drift of the shared machine hits every target alike. */
function order(round: number, targets: TargetId[]): TargetId[] {
  return round % 2 === 0 ? targets : [...targets].reverse()
}

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
  const rec: Recorded = { results: [], idleResults: [], failures: 0 }
  let idleNote = ''
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
    let nodeHop: Env['nodeHop']
    if (opts.nodeHop) {
      const hop = await startNodeHop(dir, db.port)
      cleanups.push(() => hop.stop())
      log(`node-hop pid ${hop.pid} on 127.0.0.1:${hop.port}`)
      nodeHop = hop
    }

    const env: Env = { opts, dir, db, gateway, socat, ...(nodeHop ? { nodeHop } : {}), sslDir, caPem: readFileSync(pki.caCert), cert: pki.cert, key: pki.key, user, password, tableSize }

    const targets = targetsOf(env)

    // Every target answers, and the TLS ones really are on TLS.
    const tlsInfo: string[] = []
    for (const t of targets) {
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
    for (const t of targets) {
      await pointSelects(sysbenchTarget(env, t), { threads: 8, seconds: 1, tableSize, sslDir }).catch((e) =>
        log(`warm-up ${t}: ${(e as Error).message}`)
      )
    }

    for (let round = 0; round < opts.rounds && opts.loads.has('ps'); round++) {
      for (const threads of opts.threads) {
        for (const t of order(round, targets)) await pointSelectStep(env, rec, t, threads, round)
      }
    }
    if (opts.loads.has('conn')) {
      for (let round = 0; round < opts.rounds; round++) {
        for (const t of order(round, targets)) await connectStep(env, rec, t, false, round)
        for (const t of order(round, ['tls', 'gateway'])) await connectStep(env, rec, t, true, round)
      }
    }
    if (opts.loads.has('bulk')) {
      for (let round = 0; round < opts.rounds; round++) {
        for (const t of order(round, targets)) await bulkStep(env, rec, t, round)
      }
    }
    if (opts.loads.has('idle')) await idleStep(env, rec)

    let profiles: Awaited<ReturnType<typeof profileRuns>> = []
    if (opts.profile) profiles = await profileRuns(env, path.join(outDir, 'profiles'))

    const elapsed = (Date.now() - t0) / 1000
    const text = markdownReport(rec, {
      opts,
      args: process.argv.slice(2),
      loadAtStart,
      elapsedSeconds: elapsed,
      tlsInfo,
      mysql2Note,
      freshRss,
      idleNote,
      profiles,
    })
    process.stdout.write(`${text}\n`)
    writeFileSync(path.join(outDir, 'report.md'), `${text}\n`)
    const json = { date: new Date().toISOString(), options: { ...opts, loads: [...opts.loads] }, hardware: hardwareLine(), results: rec.results, idleResults: rec.idleResults, freshRss, profiles }
    writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(json, null, 2))
    if (opts.json) writeFileSync(opts.json, JSON.stringify(json, null, 2))
    log(`report and results in ${path.relative(REPO, outDir)}/`)
    return rec.failures > 0 ? 1 : 0
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
