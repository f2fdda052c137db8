/**
 * Debian's sysbench (1.0.20, libmariadb) as the point-select load: `oltp_point_select`, text protocol
 * (`--db-ps-mode=disable`), one connection per thread, latency histogram parsed into percentiles.
 *
 * sysbench's `--mysql-ssl=on` takes client-key.pem, client-cert.pem and cacert.pem from its working
 * directory (drv_mysql.c), so TLS runs use a directory that holds exactly those three files.
 */
import { spawn } from 'node:child_process'

export interface SysbenchTarget {
  host: string
  port: number
  user: string
  password: string
  db: string
  ssl: boolean
}

export interface SysbenchResult {
  queries: number
  qps: number
  errors: number
  seconds: number
  /** Milliseconds. */
  p50: number
  p95: number
  p99: number
  raw: string
}

export interface RunOptions {
  threads: number
  seconds: number
  tableSize: number
  /** Directory with client-key.pem, client-cert.pem and cacert.pem (used when `ssl`). */
  sslDir: string
  /** Called once sysbench prints "Threads started!" (every connection open, the timed run begins). */
  onStarted?: () => void
}

const COMMON = (t: SysbenchTarget) => [
  '--db-driver=mysql',
  `--mysql-host=${t.host}`,
  `--mysql-port=${t.port}`,
  `--mysql-user=${t.user}`,
  `--mysql-password=${t.password}`,
  `--mysql-db=${t.db}`,
  `--mysql-ssl=${t.ssl ? 'on' : 'off'}`,
  '--db-ps-mode=disable',
  '--tables=1',
]

export function sysbenchRun(
  target: SysbenchTarget,
  opts: RunOptions & { command: 'prepare' | 'run' }
): Promise<{ code: number | null; out: string }> {
  const args = [
    'oltp_point_select',
    ...COMMON(target),
    `--table-size=${opts.tableSize}`,
    `--threads=${opts.threads}`,
    ...(opts.command === 'run'
      ? [`--time=${Math.max(1, Math.round(opts.seconds))}`, '--histogram=on', '--percentile=99', '--forced-shutdown=5', '--rand-type=uniform']
      : []),
    opts.command,
  ]
  const hardLimitMs = (opts.seconds + 30) * 1000
  return new Promise((resolve, reject) => {
    const child = spawn('sysbench', args, { cwd: opts.sslDir, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let started = false
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s
      if (!started && out.includes('Threads started!')) {
        started = true
        opts.onStarted?.()
      }
    })
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s))
    const timer = setTimeout(() => child.kill('SIGKILL'), hardLimitMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`cannot run sysbench (scripts/ensure-bench-tools.sh installs it): ${err.message}`))
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

/** Runs the load and parses its report; throws when sysbench failed or reported errors. */
export async function pointSelects(target: SysbenchTarget, opts: RunOptions): Promise<SysbenchResult> {
  const { code, out } = await sysbenchRun(target, { ...opts, command: 'run' })
  const num = (re: RegExp) => {
    const m = re.exec(out)
    return m ? Number(m[1]) : NaN
  }
  const queries = num(/^\s+total:\s+(\d+)/m)
  const qps = num(/^\s+queries:\s+\d+\s+\(([\d.]+) per sec\.\)/m)
  const errors = num(/^\s+ignored errors:\s+(\d+)/m)
  const seconds = num(/^\s+total time:\s+([\d.]+)s/m)
  if (code !== 0 || !Number.isFinite(queries) || !Number.isFinite(qps) || queries === 0) {
    throw new Error(`sysbench exited ${code}:\n${out.trim().split('\n').slice(-15).join('\n')}`)
  }
  const hist = parseHistogram(out)
  return {
    queries,
    qps,
    errors: Number.isFinite(errors) ? errors : 0,
    seconds,
    p50: percentileOfHistogram(hist, 0.5),
    p95: percentileOfHistogram(hist, 0.95),
    p99: percentileOfHistogram(hist, 0.99),
    raw: out,
  }
}

/** `value |****  count` lines of sysbench's "Latency histogram (values are in milliseconds)". */
export function parseHistogram(out: string): Array<[number, number]> {
  const start = out.indexOf('Latency histogram')
  if (start < 0) return []
  const rows: Array<[number, number]> = []
  for (const line of out.slice(start).split('\n')) {
    const m = /^\s*([\d.]+)\s+\|[*\s]*\s(\d+)\s*$/.exec(line)
    if (m) rows.push([Number(m[1]), Number(m[2])])
  }
  return rows
}

function percentileOfHistogram(rows: Array<[number, number]>, q: number): number {
  const total = rows.reduce((s, [, c]) => s + c, 0)
  if (total === 0) return NaN
  const want = q * total
  let seen = 0
  for (const [value, count] of rows) {
    seen += count
    if (seen >= want) return value
  }
  return rows[rows.length - 1][0]
}
