/**
 * The report: the results table, the idle RSS table and the lines that say what was measured on which
 * machine and build, as Markdown on stdout and in report.md. The number formatters are exported so that
 * the progress log prints the same figures as the table.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { formatSummary } from './cpuprofile-summary.js'
import type { Options } from './options.js'
import { formatPerf } from './perf.js'
import type { ProfileOutcome } from './profile-pass.js'
import { REPO } from './repo.js'
import type { IdleResult, Recorded, StepResult } from './steps.js'
import { ALL_TARGETS, TARGET_LABEL } from './targets.js'

export const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`
export function fmtRate(x: number): string {
  if (!Number.isFinite(x)) return 'n/a'
  return x >= 100 ? x.toFixed(0) : x.toFixed(1)
}
export function fmtMs(x: number): string {
  if (!Number.isFinite(x)) return 'n/a'
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)
}
export function fmtCpu(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'n/a'
  const us = seconds * 1e6
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} us`
}
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN)

export function resultsTable(results: StepResult[]): string {
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

export function idleTable(idleResults: IdleResult[], freshRss: number): string {
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

export function hardwareLine(): string {
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

/** What the run knows at its end besides the recorded steps. */
export interface RunFacts {
  opts: Options
  /** The command-line arguments, for the report's "Command:" line. */
  args: string[]
  loadAtStart: string
  elapsedSeconds: number
  tlsInfo: string[]
  mysql2Note: string
  freshRss: number
  idleNote: string
  profiles: ProfileOutcome[]
}

export function markdownReport(rec: Recorded, run: RunFacts): string {
  const { opts } = run
  const report = [
    '',
    `# mysql-tls-gateway bench, ${new Date().toISOString()}`,
    '',
    `Command: npm run bench -- ${run.args.join(' ')}`.trimEnd(),
    `Hardware: ${hardwareLine()}`,
    `Software: ${versions()}`,
    `Gateway revision: ${gatewayRevision()}; machine load average at start ${run.loadAtStart}, at end ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`,
    `Certificates: ${opts.keyType} (MariaDB and the gateway use the same server certificate). ${run.tlsInfo.join('; ')}`,
    run.mysql2Note,
    ...(opts.socatBuffer ? [`socat runs with -b ${opts.socatBuffer} (its default transfer block is 8192 bytes).`] : []),
    ...(opts.nodeHop
      ? ['E is test/bench/node-hop.ts: one Node.js process copying bytes with \'data\' + write() (pause until \'drain\'), noDelay on both legs, no TLS: the floor for a Node.js forwarder such as the gateway.']
      : []),
    `Durations: point selects ${opts.psSeconds} s, new connections ${opts.connSeconds} s at concurrency ${opts.connConcurrency}, ` +
      `bulk >= ${opts.bulkMinQueries} queries and >= ${opts.bulkSeconds} s; ${opts.rounds} rounds (${opts.nodeHop ? 'A B C D E, then E D C B A' : 'A B C D, then D C B A'}); elapsed ${run.elapsedSeconds.toFixed(0)} s`,
    '',
    resultsTable(rec.results),
    '',
    ...(rec.idleResults.length ? [idleTable(rec.idleResults, run.freshRss), ...(run.idleNote ? ['', `Note: ${run.idleNote}.`] : []), ''] : []),
    'Throughput and latency are means over the rounds; "vs B" is the throughput ratio to direct MariaDB TLS in the same round (mean, then each round).',
    `proxy CPU = utime+stime of the gateway route child (C) or of socat and its forked children (D)${opts.nodeHop ? ' or of the Node.js hop process (E)' : ''} over the step, divided by the queries / connections / MiB;`,
    'mariadbd CPU likewise for the server. Point-select CPU is counted from sysbench\'s "Threads started!" (connections open) to its exit.',
    'Latency: point selects per query (sysbench histogram), new connections from TCP connect to auth OK, bulk per 200 MiB query.',
    ...(rec.failures ? ['', `${rec.failures} step(s) FAILED`] : []),
  ]
  for (const p of run.profiles) {
    report.push('', `## CPU profile: ${p.load}${p.perUnit ? `, ${p.perUnit}` : ''}`, '```')
    report.push(p.summary ? formatSummary(p.summary, path.relative(REPO, p.summary.file)) : `FAILED: ${p.error}`)
    if (p.perf) report.push('', 'perf (native, same process, middle of the load):', formatPerf(p.perf))
    if (p.perfError) report.push('', `perf: ${p.perfError}`)
    if (p.syscalls) report.push('', p.syscalls)
    report.push('```')
  }
  return report.join('\n')
}
