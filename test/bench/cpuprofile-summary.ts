/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function, as a share of the busy
 * (non-idle) time, with locations mapped back to the TypeScript sources through dist/'s source maps.
 *
 *   node dist/test/bench/cpuprofile-summary.js FILE.cpuprofile [--top 25]
 *
 * Reading it: "(program)" is native work outside any JS frame (libuv, and the OpenSSL decryption that
 * TLSWrap does when bytes arrive, before JS is called); "(garbage collector)" is V8's GC; native functions
 * called from JS (e.g. `writeBuffer`, `writev`, the TLS encryption on write) appear under their own name
 * with no file.
 */
import { existsSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
  columnNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface HotSpot {
  functionName: string
  location: string
  category: string
  selfMs: number
  /** Share of the busy (non-idle) time. */
  selfPct: number
}

export interface ProfileSummary {
  file: string
  /** Set when only the samples inside a time window (e.g. the load, not the process start) were counted. */
  window?: { startUs: number; endUs: number; matched: boolean }
  wallMs: number
  busyMs: number
  top: HotSpot[]
  /** Gateway functions (src/) by total time: their own plus everything they call (node streams, TLS, native). */
  ownInclusive: HotSpot[]
  categories: Array<{ category: string; selfMs: number; selfPct: number }>
}

const maps = new Map<string, SourceMap | null>()

function sourceMapFor(jsFile: string): SourceMap | null {
  if (!maps.has(jsFile)) {
    const mapFile = `${jsFile}.map`
    let sm: SourceMap | null = null
    if (existsSync(mapFile)) {
      try {
        sm = new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')))
      } catch {
        sm = null
      }
    }
    maps.set(jsFile, sm)
  }
  return maps.get(jsFile)!
}

function repoRelative(file: string): string {
  const i = file.lastIndexOf('/dist/')
  if (i >= 0) return file.slice(i + 1)
  const nm = file.lastIndexOf('/node_modules/')
  if (nm >= 0) return file.slice(nm + 1)
  return file
}

/** "src/proxy/relay.ts:42" for compiled project code, "node:internal/streams/writable:123" otherwise (1-based lines). */
function locate(cf: CallFrame): string {
  if (!cf.url) return ''
  if (cf.url.startsWith('file://')) {
    const file = fileURLToPath(cf.url)
    const sm = file.includes('/dist/') ? sourceMapFor(file) : null
    if (sm) {
      const e = sm.findEntry(cf.lineNumber, cf.columnNumber) as { originalSource?: string; originalLine?: number }
      if (e && e.originalSource) {
        const src = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : path.resolve(path.dirname(file), e.originalSource)
        const rel = src.includes('/src/') ? src.slice(src.lastIndexOf('/src/') + 1) : src.includes('/test/') ? src.slice(src.lastIndexOf('/test/') + 1) : src
        return `${rel}:${(e.originalLine ?? 0) + 1}`
      }
    }
    return `${repoRelative(file)}:${cf.lineNumber + 1}`
  }
  return `${cf.url}:${cf.lineNumber + 1}`
}

function categoryOf(cf: CallFrame): string {
  const n = cf.functionName
  if (n === '(idle)' || n === '(program)' || n === '(garbage collector)' || n === '(root)') return n
  const u = cf.url
  if (!u) return 'native (called from JS)'
  if (u.includes('/node_modules/')) return `npm:${u.slice(u.lastIndexOf('/node_modules/') + 14).split('/')[0]}`
  if (u.includes('/dist/src/')) return 'gateway code (src/)'
  if (u.startsWith('node:internal/streams') || u.startsWith('node:stream')) return 'node streams'
  if (u.startsWith('node:_tls') || u.startsWith('node:tls') || u.includes('internal/tls')) return 'node tls'
  if (u.startsWith('node:net') || u.includes('internal/stream_base_commons') || u.includes('internal/net')) return 'node net'
  if (u.startsWith('node:')) return 'node other'
  return 'other'
}

/**
 * `window` (microseconds of CLOCK_MONOTONIC, the clock of both V8's profile timestamps and
 * process.hrtime) keeps only the samples taken during a load, leaving out the process start-up.
 */
export function summarizeProfile(file: string, topN = 20, window?: { startUs: number; endUs: number }): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  for (const n of prof.nodes) byId.set(n.id, n)
  const collect = (win?: { startUs: number; endUs: number }) => {
    const self = new Map<number, number>()
    let t = prof.startTime
    // timeDeltas[i] is the time before sample i; the time a sample stands for is the gap to the next one.
    for (let i = 0; i < prof.samples.length; i++) {
      t += prof.timeDeltas[i]
      if (win && (t < win.startUs || t > win.endUs)) continue
      const dt = i + 1 < prof.timeDeltas.length ? prof.timeDeltas[i + 1] : 0
      if (dt > 0) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt)
    }
    return self
  }
  let selfUs = collect(window)
  const matched = !window || selfUs.size > 0
  if (!matched) selfUs = collect()
  const parent = new Map<number, number>()
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const inclusive = new Map<string, HotSpot & { us: number }>()
  const byKey = new Map<string, HotSpot & { us: number }>()
  const byCat = new Map<string, number>()
  let busyUs = 0
  let totalUs = 0
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame
    totalUs += us
    const category = categoryOf(cf)
    if (category === '(idle)') continue
    busyUs += us
    byCat.set(category, (byCat.get(category) ?? 0) + us)
    const location = locate(cf)
    const key = `${cf.functionName}|${location}`
    const hs = byKey.get(key) ?? { functionName: cf.functionName || '(anonymous)', location, category, selfMs: 0, selfPct: 0, us: 0 }
    hs.us += us
    byKey.set(key, hs)
    // Total time of gateway functions: credit every distinct src/ frame on this node's stack once.
    const seen = new Set<string>()
    for (let id2: number | undefined = id; id2 !== undefined; id2 = parent.get(id2)) {
      const f = byId.get(id2)!.callFrame
      if (!f.url.includes('/dist/src/')) continue
      const loc = locate(f)
      const k = `${f.functionName}|${loc}`
      if (seen.has(k)) continue
      seen.add(k)
      const e = inclusive.get(k) ?? { functionName: f.functionName || '(anonymous)', location: loc, category: 'gateway code (src/)', selfMs: 0, selfPct: 0, us: 0 }
      e.us += us
      inclusive.set(k, e)
    }
  }
  const top = [...byKey.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, topN)
    .map(({ us, ...h }) => ({ ...h, selfMs: us / 1000, selfPct: (100 * us) / busyUs }))
  const ownInclusive = [...inclusive.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, 10)
    .map(({ us, ...h }) => ({ ...h, selfMs: us / 1000, selfPct: (100 * us) / busyUs }))
  const categories = [...byCat.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([category, us]) => ({ category, selfMs: us / 1000, selfPct: (100 * us) / busyUs }))
  return { file, ...(window ? { window: { ...window, matched } } : {}), wallMs: totalUs / 1000, busyMs: busyUs / 1000, top, ownInclusive, categories }
}

export function formatSummary(s: ProfileSummary, title = path.basename(s.file)): string {
  const lines = [
    `${title}: busy ${s.busyMs.toFixed(0)} ms of ${s.wallMs.toFixed(0)} ms sampled` +
      (s.window ? (s.window.matched ? ' (during the load only)' : ' (WHOLE process: no sample inside the load window)') : ''),
    `  by category: ${s.categories.map((c) => `${c.category} ${c.selfPct.toFixed(1)}%`).join(', ')}`,
    '  self%   self ms  function                              location',
  ]
  for (const h of s.top) {
    lines.push(
      `  ${h.selfPct.toFixed(1).padStart(5)}  ${h.selfMs.toFixed(0).padStart(8)}  ${h.functionName.slice(0, 36).padEnd(36)}  ${h.location}`
    )
  }
  if (s.ownInclusive.length > 0) {
    lines.push('  gateway functions by total time (self + callees):', '  total%  total ms  function                              location')
    for (const h of s.ownInclusive) {
      lines.push(
        `  ${h.selfPct.toFixed(1).padStart(6)}  ${h.selfMs.toFixed(0).padStart(8)}  ${h.functionName.slice(0, 36).padEnd(36)}  ${h.location}`
      )
    }
  }
  return lines.join('\n')
}

// CLI: node dist/test/bench/cpuprofile-summary.js FILE... [--top N]
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2)
  const ti = args.indexOf('--top')
  const topN = ti >= 0 ? Number(args.splice(ti, 2)[1]) : 25
  if (args.length === 0) {
    process.stderr.write('usage: cpuprofile-summary.js FILE.cpuprofile... [--top N]\n')
    process.exitCode = 2
  }
  for (const f of args) process.stdout.write(`${formatSummary(summarizeProfile(f, topN))}\n\n`)
}
