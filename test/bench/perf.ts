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
  /** Every sample classified: kernel, OpenSSL, V8 and JIT code, Node/libuv, libc (malloc, memcpy). */
  byKind: Array<{ kind: string; pct: number }>
}

const OPENSSL = /aes|gcm|ghash|rsaz|^bn_|bn_mul|^BN_|ecp_|x25519|sha\d|sha256|sha512|EVP_|ossl_|OPENSSL_|^SSL_|^ssl_|^tls|ssl3_|CRYPTO_|ASN1|asn1|X509|x509|RSA_|rsa_|^EC_|ec_|HMAC|hmac|HKDF|kdf|OBJ_|PEM_|BIO_|ERR_|chacha|poly1305/

function kindOf(r: PerfRow): string {
  if (r.dso.startsWith('[kernel')) return 'kernel'
  if (r.dso.startsWith('[JIT]')) return 'V8 JIT code'
  if (/libcrypto|libssl/.test(r.dso)) return 'OpenSSL'
  if (r.dso.startsWith('libc')) return /malloc|free|memmove|memcpy|memset/.test(r.symbol) ? 'libc malloc/memcpy' : 'libc other (syscall stubs, futex)'
  if (r.dso === 'node' || r.dso.startsWith('libnode')) {
    if (OPENSSL.test(r.symbol)) return 'OpenSSL'
    if (/^Builtins_|^v8::|^V8|^Heap|^std::_Hashtable<v8/.test(r.symbol)) return 'V8 (builtins, GC, compiler, profiler)'
    if (/^uv_|^uv__/.test(r.symbol)) return 'libuv'
    return 'Node C++ (node::)'
  }
  return 'other'
}

function report(file: string, sort: string, limit: number, percentLimit = '0.3'): PerfRow[] {
  const r = spawnSync(
    'perf',
    ['report', '-i', file, '--no-children', '--sort', sort, '--stdio', '-g', 'none', '--percent-limit', percentLimit],
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
  const all = report(file, 'dso,sym', 100_000, '0')
  const kinds = new Map<string, number>()
  for (const r of all) kinds.set(kindOf(r), (kinds.get(kindOf(r)) ?? 0) + r.pct)
  const byKind = [...kinds.entries()].sort((a, b) => b[1] - a[1]).map(([kind, pct]) => ({ kind, pct }))
  return { byDso: report(file, 'dso', 10), bySymbol: all.slice(0, topN), byKind }
}

export function formatPerf(s: PerfSummary): string {
  const lines = [
    `  by kind: ${s.byKind.filter((k) => k.pct >= 0.5).map((k) => `${k.kind} ${k.pct.toFixed(1)}%`).join(', ')}`,
    `  by library: ${s.byDso.map((r) => `${r.dso} ${r.pct.toFixed(1)}%`).join(', ')}`,
    '  self%  library               symbol',
  ]
  for (const r of s.bySymbol) lines.push(`  ${r.pct.toFixed(1).padStart(5)}  ${r.dso.slice(0, 20).padEnd(20)}  ${r.symbol.slice(0, 100)}`)
  return lines.join('\n')
}

export function straceAvailable(): boolean {
  return spawnSync('strace', ['-V'], { encoding: 'utf8', timeout: 10_000 }).status === 0
}

/** `strace -c -p pid` for `seconds`; resolves with syscall counts (what the gateway asks of the kernel per unit of work). */
export function straceCount(pid: number, seconds: number): Promise<Array<{ syscall: string; calls: number; errors: number }>> {
  return new Promise((resolve, reject) => {
    // -c summary goes to stderr when the tracer detaches (SIGINT from timeout).
    const child = spawn('timeout', ['-s', 'INT', String(seconds), 'strace', '-c', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s))
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', () => {
      clearTimeout(timer)
      const rows: Array<{ syscall: string; calls: number; errors: number }> = []
      for (const line of err.split('\n')) {
        // "% time     seconds  usecs/call     calls    errors syscall"
        const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)\s*$/.exec(line)
        if (m && m[3] !== 'total') rows.push({ syscall: m[3], calls: Number(m[1]), errors: Number(m[2] ?? 0) })
      }
      if (rows.length === 0) reject(new Error(`strace produced no summary: ${err.trim().split('\n').slice(-3).join(' ')}`))
      else resolve(rows.sort((a, b) => b.calls - a.calls))
    })
  })
}
