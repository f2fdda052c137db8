/**
 * SNI end-to-end helpers: YAML for several routes sharing one listen address, mysql2 clients that dial the
 * gateway's loopback port under a tenant name (so they send SNI without touching /etc/hosts), and a busy-tenant
 * traffic loop that records every failed query or connect.
 */
import net from 'node:net'
import type { TLSSocket } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import mysql from 'mysql2/promise'
import type { Account } from '../../helpers/mariadb.js'

export interface SniRoute {
  name: string
  /** Loopback port of the backend MariaDB. */
  backendPort: number
  /** Omitted: the key is not written (for the "route without serverNames" variant). */
  serverNames?: string[]
  default?: boolean
  cert: string
  key: string
  drainTimeout?: string
  /** A listener of its own instead of the shared one (e.g. a transparent route for contrast). */
  listenPort?: number
  greeting?: 'backend' | 'gateway'
}

export interface SniYamlOptions {
  /** Every route listens here (that is the point), unless it sets its own listenPort. */
  listenPort: number
  routes: SniRoute[]
  adminPort?: number
  /** defaults.timeouts.handshake, e.g. '1s'. */
  handshakeTimeout?: string
}

/** One route per block, one key per line, so a test can find the line a validation problem points at. */
export function sniYaml(opts: SniYamlOptions): string {
  const lines = ['log: { level: info }']
  if (opts.adminPort) lines.push(`admin: { listen: 127.0.0.1:${opts.adminPort} }`)
  lines.push(
    'defaults:',
    '  tls: { mode: required }',
    `  timeouts: { connect: 2s, handshake: ${opts.handshakeTimeout ?? '5s'} }`,
    '  drainTimeout: 2s',
    'routes:'
  )
  for (const r of opts.routes) {
    lines.push(`  - name: ${r.name}`, `    listen: 127.0.0.1:${r.listenPort ?? opts.listenPort}`, `    backend: 127.0.0.1:${r.backendPort}`)
    if (r.serverNames) lines.push(`    serverNames: [${r.serverNames.map((n) => JSON.stringify(n)).join(', ')}]`)
    if (r.default) lines.push('    default: true')
    if (r.greeting) lines.push(`    greeting: ${r.greeting}`)
    lines.push(`    tls: { cert: ${JSON.stringify(r.cert)}, key: ${JSON.stringify(r.key)} }`)
    if (r.drainTimeout) lines.push(`    drainTimeout: ${r.drainTimeout}`)
  }
  return `${lines.join('\n')}\n`
}

/** 1-based line of the first line containing `needle` at or after the line containing `after`. */
export function lineOf(text: string, needle: string, after?: string): { line: number; col: number } {
  const lines = text.split('\n')
  const start = after === undefined ? 0 : lines.findIndex((l) => l.includes(after))
  if (start < 0) throw new Error(`no line containing ${after}`)
  for (let i = start; i < lines.length; i++) {
    const col = lines[i]!.indexOf(needle)
    if (col >= 0) return { line: i + 1, col: col + 1 }
  }
  throw new Error(`no line containing ${needle}`)
}

/** Per-query deadline, so a hung gateway fails the test instead of stalling it. */
export const QUERY_TIMEOUT_MS = 10_000

/**
 * mysql2 sends SNI = the host it dials (never for an IP). Dial the gateway's loopback port under a tenant name
 * through a `stream` factory: the name never needs to resolve.
 */
export function viaName(
  port: number,
  servername: string,
  account: Account,
  ssl: Record<string, unknown>
): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: servername,
    port,
    user: account.user,
    password: account.password,
    ssl,
    connectTimeout: 5_000,
    stream: () => net.connect(port, '127.0.0.1'),
  } as mysql.ConnectionOptions)
}

/** COM_QUIT and wait for the close, bounded: a gateway that never closes cannot hang the test. */
export async function endConn(c: mysql.Connection, timeoutMs = 5_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const cut = new Promise<void>((resolve) => {
    timer = setTimeout(() => (c.destroy(), resolve()), timeoutMs)
  })
  try {
    await Promise.race([c.end().catch(() => {}), cut])
  } finally {
    clearTimeout(timer)
  }
}

export async function scalar(c: mysql.Connection, sql: string): Promise<unknown> {
  const [rows] = await c.query<mysql.RowDataPacket[]>({ sql, timeout: QUERY_TIMEOUT_MS })
  return Object.values(rows[0] ?? {})[0]
}

/** sha256 fingerprint of the certificate the gateway presented on this connection. */
export function presentedFingerprint(c: mysql.Connection): string {
  const stream = (c as unknown as { connection: { stream: TLSSocket } }).connection.stream
  return stream.getPeerCertificate().fingerprint256
}

/**
 * A busy tenant: one persistent connection querying back to back, and a new connection (one query, then
 * close) started every `intervalMs`, all through SNI. Every failure is recorded, never thrown, so the test can
 * assert there was none; the persistent session's CONNECTION_ID must never change.
 */
export function busyTenant(open: () => Promise<mysql.Connection>, intervalMs = 100) {
  const failures: string[] = []
  const sessionIds = new Set<number>()
  let persistentQueries = 0
  let newConnections = 0
  let running = true
  const persistent = (async () => {
    let c: mysql.Connection
    try {
      c = await open()
    } catch (err) {
      failures.push(`persistent connect: ${(err as Error).message}`)
      return
    }
    try {
      while (running) {
        try {
          sessionIds.add(Number(await scalar(c, 'SELECT CONNECTION_ID()')))
          persistentQueries++
        } catch (err) {
          failures.push(`persistent query: ${(err as Error).message}`)
          return
        }
      }
    } finally {
      await endConn(c)
    }
  })()
  const inFlight = new Set<Promise<void>>()
  const fresh = (async () => {
    let n = 0
    while (running) {
      const i = ++n
      // Started on a fixed cadence, not after the previous one: a slow connect must not hide a gap.
      const one = (async () => {
        try {
          const c = await open()
          try {
            if (Number(await scalar(c, `SELECT ${i}`)) !== i) failures.push(`fresh #${i}: wrong result`)
            newConnections++
          } finally {
            await endConn(c)
          }
        } catch (err) {
          failures.push(`fresh #${i}: ${(err as Error).message}`)
        }
      })()
      inFlight.add(one)
      void one.finally(() => inFlight.delete(one))
      await sleep(intervalMs)
    }
  })()
  return {
    failures,
    sessionIds,
    get counts() {
      return { persistentQueries, newConnections }
    },
    async stop() {
      running = false
      await Promise.all([persistent, fresh])
      await Promise.all([...inFlight])
    },
  }
}
