/**
 * Optional native view of the route child under load, with Linux `perf` (cpu-clock sampling, no call
 * graphs): it splits what the V8 profile can only call "writeBuffer" or "(program)" into OpenSSL
 * (AES-GCM, RSA/ECDSA), the kernel (TCP send/receive, syscalls), libuv, V8 and JIT code.
 * Used by `npm run bench -- --profile` when perf is installed; silently skipped otherwise.
 */
import { spawn, spawnSync } from 'node:child_process'

export function perfAvailable(): boolean {
  const r = spawnSync('perf', ['--version'], { encoding: 'utf8', timeout: 10_000 })
  return r.status === 0
}

/** Samples `pid` for `seconds`; resolves with the perf.data path, or rejects with perf's stderr. */
export function perfRecord(pid: number, seconds: number, outFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'perf',
      ['record', '-e', 'cpu-clock', '-F', '997', '-p', String(pid), '-o', outFile, '--', 'sleep', String(seconds)],
      { stdio: ['ignore', 'ignore', 'pipe'] }
    )
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s))
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(outFile)
      else reject(new Error(`perf record exited ${code}: ${err.trim().split('\n').slice(-3).join(' ')}`))
    })
  })
}

export interface PerfRow {
  pct: number
  dso: string
  symbol: string
}

export interface PerfSummary {
  byDso: PerfRow[]
  bySymbol: PerfRow[]
}

function report(file: string, sort: string, limit: number): PerfRow[] {
  const r = spawnSync(
    'perf',
    ['report', '-i', file, '--no-children', '--sort', sort, '--stdio', '-g', 'none', '--percent-limit', '0.3'],
    { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 }
  )
  if (r.status !== 0) throw new Error(`perf report failed: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`)
  const rows: PerfRow[] = []
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('#') || !line.trim()) continue
    // "    12.34%  node                  [.] symbol name"  or  "    40.00%  [kernel.kallsyms]"
    const m = /^\s*([\d.]+)%\s+(\[JIT\] tid \d+|\S+)(?:\s+\[[.kj]\]\s+(.*?))?\s*$/.exec(line)
    if (m) rows.push({ pct: Number(m[1]), dso: m[2], symbol: (m[3] ?? '').trim() })
    if (rows.length >= limit) break
  }
  return rows
}

export function perfSummary(file: string, topN = 20): PerfSummary {
  return { byDso: report(file, 'dso', 10), bySymbol: report(file, 'dso,sym', topN) }
}

export function formatPerf(s: PerfSummary): string {
  const lines = [`  by library: ${s.byDso.map((r) => `${r.dso} ${r.pct.toFixed(1)}%`).join(', ')}`, '  self%  library               symbol']
  for (const r of s.bySymbol) lines.push(`  ${r.pct.toFixed(1).padStart(5)}  ${r.dso.slice(0, 20).padEnd(20)}  ${r.symbol.slice(0, 100)}`)
  return lines.join('\n')
}
