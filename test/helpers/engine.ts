/**
 * Runs a ListenerEngine in the test process on a loopback port, with its logs captured as parsed JSON lines
 * (so tests can assert on log fields and on the absence of secrets).
 */
import net from 'node:net'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import type { ListenerConfig, RouteConfig } from '../../src/config/types.js'
import { ListenerEngine } from '../../src/proxy/engine.js'
import { testEnv } from './env.js'

export type RouteOverrides = Partial<Omit<RouteConfig, 'tls' | 'backendTls' | 'timeouts'>> & {
  tls?: Partial<RouteConfig['tls']>
  backendTls?: Partial<RouteConfig['backendTls']>
  timeouts?: Partial<RouteConfig['timeouts']>
}

let routeCounter = 0

/** A route to the harness MariaDB with the harness PKI's localhost certificate, TLS required. */
export function routeConfig(overrides: RouteOverrides = {}): RouteConfig {
  const env = testEnv()
  const base: RouteConfig = {
    name: `r${++routeCounter}`,
    listen: { host: '127.0.0.1', port: 0 },
    backend: { host: '127.0.0.1', port: env.mariadb.port },
    tls: { mode: 'required', cert: env.pki.cert, key: env.pki.key, minVersion: 'TLSv1.2' },
    backendTls: { mode: 'disabled' },
    timeouts: { connectMs: 3000, handshakeMs: 8000, idleMs: 0 },
    maxConnections: 1000,
    maxHandshakeBytes: 1024 * 1024,
    drainTimeoutMs: 5000,
    tcpKeepAlive: true,
    serverNames: [],
    default: false,
    greeting: 'backend',
  }
  return {
    ...base,
    ...overrides,
    tls: { ...base.tls, ...overrides.tls },
    backendTls: { ...base.backendTls, ...overrides.backendTls },
    timeouts: { ...base.timeouts, ...overrides.timeouts },
  } as RouteConfig
}

export interface RunningEngine {
  engine: ListenerEngine
  port: number
  host: '127.0.0.1'
  /** Every log line so far, parsed. */
  logs: Array<Record<string, unknown>>
  /** Raw log text (to grep for secrets). */
  logText(): string
  close(): Promise<void>
}

export async function startEngine(
  routes: RouteConfig | RouteConfig[],
  opts: { greeting?: 'backend' | 'gateway'; level?: string } = {}
): Promise<RunningEngine> {
  const list = Array.isArray(routes) ? routes : [routes]
  const greeting = opts.greeting ?? (list.length > 1 ? 'gateway' : list[0]!.greeting)
  const lines: string[] = []
  const logs: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue
        lines.push(line)
        logs.push(JSON.parse(line) as Record<string, unknown>)
      }
      cb()
    },
  })
  const logger = pino({ level: opts.level ?? 'debug' }, sink)
  const listener: ListenerConfig = { key: '127.0.0.1:0', listen: { host: '127.0.0.1', port: 0 }, greeting, routes: list }
  const engine = await ListenerEngine.create(listener, logger)
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    engine.handleConnection(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  return {
    engine,
    port,
    host: '127.0.0.1',
    logs,
    logText: () => lines.join('\n'),
    async close() {
      server.close()
      await engine.drain(100)
      for (const s of sockets) s.destroy()
    },
  }
}
