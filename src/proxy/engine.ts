/**
 * ListenerEngine: everything one proxy instance does for one listener: one route, or several routes sharing a
 * port by SNI. It owns TLS material and per-route stats; the caller owns the net.Server and hands it accepted
 * sockets. It implements the SessionHost contract the per-connection state machines run against.
 */
import type net from 'node:net'
import { isIP } from 'node:net'
import type tls from 'node:tls'
import type { ListenerConfig, LogLevel } from '../config/types.js'
import type { Logger } from '../log.js'
import type { RouteStatsSnapshot } from '../metrics/route-stats.js'
import type { RouteRuntimeInfo } from '../supervisor/ipc.js'
import {
  CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS,
  CLIENT_CONNECT_ATTRS,
  CLIENT_CONNECT_WITH_DB,
  CLIENT_DEPRECATE_EOF,
  CLIENT_FOUND_ROWS,
  CLIENT_IGNORE_SIGPIPE,
  CLIENT_IGNORE_SPACE,
  CLIENT_INTERACTIVE,
  CLIENT_LOCAL_FILES,
  CLIENT_LONG_FLAG,
  CLIENT_LONG_PASSWORD,
  CLIENT_MULTI_RESULTS,
  CLIENT_MULTI_STATEMENTS,
  CLIENT_NO_SCHEMA,
  CLIENT_ODBC,
  CLIENT_PLUGIN_AUTH,
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
  CLIENT_PROTOCOL_41,
  CLIENT_PS_MULTI_RESULTS,
  CLIENT_SECURE_CONNECTION,
  CLIENT_SESSION_TRACK,
  CLIENT_SSL,
  CLIENT_TRANSACTIONS,
} from '../protocol/constants.js'
import type { Greeting } from '../protocol/greeting.js'
import { RouteRuntime, pickRoute } from './route-runtime.js'
import { Session } from './session.js'
import { ClientSocketOptions } from './client-socket-options.js'
import type { SessionHost } from './session-types.js'
import { TlsMaterial } from './tls-material.js'
import { GatewayError } from '../errors.js'

export interface TlsReloadResult {
  route: string
  ok: boolean
  /** Why the new material was refused (old material stays in use). */
  message?: string
}

/**
 * What a gateway greeting may offer before any backend was seen: bits every MySQL 5.7+/MariaDB 10.2+ server
 * has. Compression is never offered in gateway-greeting mode (see README "SNI routing").
 */
const GATEWAY_BASE_CAPABILITIES =
  CLIENT_LONG_PASSWORD |
  CLIENT_FOUND_ROWS |
  CLIENT_LONG_FLAG |
  CLIENT_CONNECT_WITH_DB |
  CLIENT_NO_SCHEMA |
  CLIENT_ODBC |
  CLIENT_LOCAL_FILES |
  CLIENT_IGNORE_SPACE |
  CLIENT_PROTOCOL_41 |
  CLIENT_INTERACTIVE |
  CLIENT_IGNORE_SIGPIPE |
  CLIENT_TRANSACTIONS |
  CLIENT_SECURE_CONNECTION |
  CLIENT_MULTI_STATEMENTS |
  CLIENT_MULTI_RESULTS |
  CLIENT_PS_MULTI_RESULTS |
  CLIENT_PLUGIN_AUTH |
  CLIENT_CONNECT_ATTRS |
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
  CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS |
  CLIENT_SESSION_TRACK |
  CLIENT_DEPRECATE_EOF

const DEFAULT_GATEWAY_VERSION = '8.0.40-gateway'

export class ListenerEngine implements SessionHost {
  routes: RouteRuntime[]
  readonly greeting
  maxHandshakeBytes: number
  handshakeTimeoutMs: number
  readonly #clientSocketOptions = new ClientSocketOptions(true)
  fallbackRoute: RouteRuntime
  logger: Logger
  readonly #rootLogger: Logger
  readonly #sessions = new Set<Session>()
  #nextId = 1
  #learnedCapabilities: number | undefined
  #learnedVersion: string | undefined
  #draining = false

  private constructor(listener: ListenerConfig, logger: Logger, rootLogger: Logger, routes: RouteRuntime[]) {
    this.logger = logger
    this.#rootLogger = rootLogger
    this.greeting = listener.greeting
    this.routes = routes
    this.fallbackRoute = routes[0]!
    this.maxHandshakeBytes = 0
    this.handshakeTimeoutMs = 0
    this.#setRoutes(routes)
  }

  #setRoutes(routes: RouteRuntime[]): void {
    this.routes = routes
    this.maxHandshakeBytes = Math.max(...routes.map((r) => r.config.maxHandshakeBytes))
    this.handshakeTimeoutMs = Math.max(...routes.map((r) => r.config.timeouts.handshakeMs))
    this.#clientSocketOptions.setKeepAlive(routes.some((r) => r.config.tcpKeepAlive))
    this.fallbackRoute = routes.find((r) => r.config.default) ?? routes[0]!
  }

  /**
   * Applies a changed route set of a shared listener in place. Unchanged routes keep their runtime (and open
   * connections); changed and added routes get fresh TLS material first, so a bad certificate rejects the whole
   * update and nothing changes. Connections of changed or removed routes finish on the old settings and are
   * closed after that route's drainTimeout, as they would be in a replaced process.
   */
  async update(next: ListenerConfig): Promise<void> {
    if (next.greeting !== this.greeting) throw new GatewayError('GW_ERR_CONFIG_INVALID', 'greeting mode cannot change in place')
    const current = new Map(this.routes.map((r) => [r.name, r]))
    const routes: RouteRuntime[] = []
    const retired: RouteRuntime[] = []
    for (const config of next.routes) {
      const old = current.get(config.name)
      if (old && JSON.stringify(old.config) === JSON.stringify(config)) {
        routes.push(old)
        continue
      }
      const material = config.tls.mode === 'disabled' ? undefined : await TlsMaterial.load(config.name, config.tls)
      routes.push(new RouteRuntime(config, material, this.#rootLogger.child({ route: config.name }), old?.stats))
      if (old) retired.push(old)
    }
    for (const old of this.routes) if (!next.routes.some((c) => c.name === old.name)) retired.push(old)
    if (routes.length === 0) throw new GatewayError('GW_ERR_CONFIG_INVALID', `listener ${next.key} has no routes`)
    this.#setRoutes(routes)
    for (const route of retired) {
      const timer = setTimeout(() => {
        for (const s of this.#sessions) if (s.route === route) s.abort('drain')
      }, route.config.drainTimeoutMs)
      timer.unref()
    }
    this.logger.info(
      { routes: routes.map((r) => r.name), retired: retired.map((r) => r.name) },
      'routes updated in place'
    )
  }

  /** Loads every route's TLS material; rejects with TlsLoadError (code GW_ERR_CERT_LOAD) if any fails. */
  static async create(listener: ListenerConfig, logger: Logger): Promise<ListenerEngine> {
    if (listener.routes.length === 0) throw new GatewayError('GW_ERR_CONFIG_INVALID', `listener ${listener.key} has no routes`)
    const routes = await Promise.all(
      listener.routes.map(async (config) => {
        const material = config.tls.mode === 'disabled' ? undefined : await TlsMaterial.load(config.name, config.tls)
        return new RouteRuntime(config, material, logger.child({ route: config.name }))
      })
    )
    const engineLogger = listener.greeting === 'backend' ? routes[0]!.logger : logger.child({ listener: listener.key })
    return new ListenerEngine(listener, engineLogger, logger, routes)
  }

  /** Called with the listening socket's handle before listening on it (see client-socket-options.ts). */
  presetListener(handle: unknown): void {
    this.#clientSocketOptions.presetOnListener(handle)
  }

  prepareClientSocket(socket: net.Socket): void {
    this.#clientSocketOptions.applyTo(socket)
  }

  /** Takes ownership of an accepted client socket. */
  handleConnection(socket: net.Socket): void {
    if (this.#draining) {
      socket.destroy()
      return
    }
    socket.on('error', () => {}) // errors are handled by the session's legs; this guards the gap before
    const session = new Session(this, this.#nextId++, socket)
    this.#sessions.add(session)
    void session.run()
  }

  sessionClosed(session: Session): void {
    this.#sessions.delete(session)
    if (this.#draining && this.#sessions.size === 0) this.#onDrained?.()
  }

  gatewayGreeting(): { serverVersion: string; capabilities: number } {
    const configured = this.fallbackRoute.config.serverVersion
    const capabilities = (GATEWAY_BASE_CAPABILITIES & (this.#learnedCapabilities ?? 0xffffffff)) | CLIENT_SSL
    return { serverVersion: configured ?? this.#learnedVersion ?? DEFAULT_GATEWAY_VERSION, capabilities: capabilities >>> 0 }
  }

  learnBackend(_route: RouteRuntime, greeting: Greeting): void {
    this.#learnedCapabilities = ((this.#learnedCapabilities ?? 0xffffffff) & greeting.capabilities) >>> 0
    this.#learnedVersion ??= greeting.serverVersion
  }

  routeFor(servername: string | undefined): RouteRuntime | undefined {
    if (servername) {
      const route = pickRoute(this.routes, servername)
      if (route) return route
      // RFC 6066 forbids IP addresses as server names, yet PHP's mysqlnd sends the address it dialled: that
      // names no tenant, so the client is treated like one that sent no name.
      if (!isIP(servername)) {
        return this.routes.length === 1 && this.routes[0]!.config.serverNames.length === 0 ? this.routes[0] : undefined
      }
    }
    if (this.routes.length === 1) return this.routes[0]
    return this.routes.find((r) => r.config.default)
  }

  contextFor(servername: string | undefined): tls.SecureContext | undefined {
    const route = (servername ? pickRoute(this.routes, servername) : undefined) ?? this.fallbackRoute
    return (route.tls ?? this.routes.find((r) => r.tls)?.tls)?.context
  }

  /** Re-reads cert/key/CA files; new handshakes use the new material, open connections are untouched. */
  async reloadTls(names?: string[]): Promise<TlsReloadResult[]> {
    const results: TlsReloadResult[] = []
    for (const route of this.routes) {
      if (names && !names.includes(route.name)) continue
      if (!route.tls) continue
      try {
        const { changed } = await route.tls.reload()
        route.logger.info({ changed, cert: route.tls.info.subject, notAfter: route.tls.info.notAfter }, 'tls material reloaded')
        results.push({ route: route.name, ok: true })
      } catch (err) {
        const message = (err as Error).message
        route.logger.error({ err: { code: (err as GatewayError).code, message } }, 'tls reload failed, keeping the previous certificate')
        results.push({ route: route.name, ok: false, message })
      }
    }
    return results
  }

  stats(): Record<string, RouteStatsSnapshot> {
    return Object.fromEntries(this.routes.map((r) => [r.name, r.stats.snapshot()]))
  }

  info(): RouteRuntimeInfo[] {
    return this.routes.map((r) => ({
      route: r.name,
      open: r.open,
      cert: r.tls ? { subject: r.tls.info.subject, notAfter: r.tls.info.notAfter, notAfterUnix: r.tls.info.notAfterUnix } : undefined,
    }))
  }

  openConnections(): number {
    return this.#sessions.size
  }

  setLogLevel(level: LogLevel): void {
    this.logger.level = level
    for (const r of this.routes) r.logger.level = level
  }

  #onDrained: (() => void) | undefined

  /**
   * Waits for open connections to end, up to timeoutMs, then closes the rest. The caller stops accepting first
   * (server.close()). Connections still in their handshake are left to finish it: they were accepted before
   * the listener stopped, and cutting them would drop a client during a reload.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true
    if (this.#sessions.size === 0) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      timer.unref()
      this.#onDrained = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    for (const s of [...this.#sessions]) s.abort('drain')
  }
}
