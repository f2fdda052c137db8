/**
 * Runs the real CLI (`node bin/gateway.js --config FILE`) for end-to-end tests: parses its JSON log lines,
 * lets a test wait for a log event or poll the admin endpoint, and always ends the process it started (by pid).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../../helpers/wait.js'
import type { RouteView } from '../../../src/admin/view.js'

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..')
const BIN = path.join(REPO_ROOT, 'bin', 'gateway.js')
const STOP_TIMEOUT_MS = 15_000

export type LogLine = Record<string, unknown> & { msg?: string; level?: number }

export interface GatewayRun {
  proc: ChildProcess
  pid: number
  /** Every JSON line printed so far, supervisor and children alike. */
  logs: LogLine[]
  stderr(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Waits for a matching log line among those printed from index `since` on (default: all). */
  waitForLog(match: (l: LogLine) => boolean, what: string, opts?: { since?: number; timeoutMs?: number }): Promise<LogLine>
  /** Number of log lines so far, for `since`: wait only for lines printed after this moment. */
  mark(): number
  signal(sig: NodeJS.Signals): void
  /** GET on the admin server. */
  admin(pathname: string): Promise<{ status: number; body: string }>
  routes(): Promise<RouteView[]>
  /** SIGTERM and wait (SIGKILL after a deadline so a broken gateway cannot hang the suite). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export interface StartOptions {
  adminPort?: number
  /** Wait until /readyz answers 200 (default true; needs adminPort). */
  waitReady?: boolean
}

export async function startGateway(configPath: string, opts: StartOptions = {}): Promise<GatewayRun> {
  const proc = spawn(process.execPath, [BIN, '--config', configPath], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: LogLine[] = []
  let stderr = ''
  let partial = ''
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk
    let nl: number
    while ((nl = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      try {
        logs.push(JSON.parse(line) as LogLine)
      } catch {
        logs.push({ msg: `(not json) ${line}` })
      }
    }
  })
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal }))
  )
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined
  void exited.then((e) => (exitInfo = e))

  const admin = (pathname: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      if (!opts.adminPort) return reject(new Error('no admin port configured for this gateway'))
      const req = http.get({ host: '127.0.0.1', port: opts.adminPort, path: pathname, timeout: 3_000 }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (d: string) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on('timeout', () => req.destroy(new Error(`admin ${pathname} timed out`)))
      req.on('error', reject)
    })

  const run: GatewayRun = {
    proc,
    pid: proc.pid!,
    logs,
    stderr: () => stderr,
    exited,
    mark: () => logs.length,
    waitForLog: (match, what, { since = 0, timeoutMs = 15_000 } = {}) =>
      waitFor(
        () => {
          if (exitInfo) throw new Error(`gateway exited (${JSON.stringify(exitInfo)}); stderr: ${stderr.slice(-2000)}`)
          for (let i = since; i < logs.length; i++) if (match(logs[i]!)) return logs[i]
          return undefined
        },
        { timeoutMs, intervalMs: 20, what }
      ),
    signal: (sig) => {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, sig)
    },
    admin,
    routes: async () => JSON.parse((await admin('/routes')).body) as RouteView[],
    async stop() {
      // GW_E2E_LOG_DIR keeps every gateway's log lines for a post-mortem of a slow or failed run.
      if (process.env.GW_E2E_LOG_DIR) {
        const file = path.join(process.env.GW_E2E_LOG_DIR, `gateway-${proc.pid}.log`)
        writeFileSync(file, logs.map((l) => JSON.stringify(l)).join('\n'))
      }
      run.signal('SIGTERM')
      const timer = setTimeout(() => run.signal('SIGKILL'), STOP_TIMEOUT_MS)
      try {
        return await exited
      } finally {
        clearTimeout(timer)
      }
    },
  }
  if (opts.adminPort && opts.waitReady !== false) {
    await waitFor(
      async () => {
        if (exitInfo) throw new Error(`gateway exited (${JSON.stringify(exitInfo)}); stderr: ${stderr.slice(-2000)}`)
        return (await admin('/readyz')).status === 200
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'gateway /readyz 200' }
    ).catch(async (err) => {
      run.signal('SIGKILL')
      await exited
      throw err
    })
  }
  return run
}
