/**
 * The normalized, validated configuration the rest of the gateway consumes.
 * The YAML file (see schemas/gateway.schema.json) is turned into these shapes by src/config/load.ts:
 * defaults merged into every route, durations converted to milliseconds, relative paths made absolute.
 * Values of these types are deep-frozen and safe to send over IPC (plain JSON).
 */

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error'
export type LogFormat = 'json' | 'pretty'

/** Client-side TLS policy. */
export type TlsMode = 'required' | 'preferred' | 'disabled'
/** Backend-side TLS policy, named after MySQL's --ssl-mode values. */
export type BackendTlsMode = 'disabled' | 'required' | 'verify-ca' | 'verify-identity'
/** Who sends the first packet to a client: the backend (relayed) or the gateway (SNI routing, backend shielding). */
export type GreetingMode = 'backend' | 'gateway'

export interface HostPort {
  host: string
  port: number
}

export interface RouteTlsConfig {
  mode: TlsMode
  /** Absolute path of the PEM certificate chain presented to clients (absent only when mode is disabled). */
  cert?: string
  /** Absolute path of the PEM private key. */
  key?: string
  /** Absolute path of a PEM CA bundle; when set, clients must present a certificate chaining to it. */
  clientCA?: string
  minVersion: 'TLSv1.2' | 'TLSv1.3'
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are not affected). */
  ciphers?: string
}

export interface BackendTlsConfig {
  mode: BackendTlsMode
  /** Absolute path of the CA bundle used for verify-ca / verify-identity. */
  ca?: string
  /** Name checked against the backend certificate (verify-identity) and sent as SNI; defaults to backend host. */
  servername?: string
}

export interface TimeoutsConfig {
  /** Backend TCP (and backend TLS) dial. */
  connectMs: number
  /** Whole connection phase: accept -> auth OK. Keep below the backend's connect_timeout (10 s default). */
  handshakeMs: number
  /** Inactivity after authentication; 0 disables. */
  idleMs: number
}

export interface RouteConfig {
  name: string
  listen: HostPort
  backend: HostPort
  tls: RouteTlsConfig
  backendTls: BackendTlsConfig
  timeouts: TimeoutsConfig
  maxConnections: number
  /** Cap on any single message before authentication completes (answered with ERR 1153). */
  maxHandshakeBytes: number
  drainTimeoutMs: number
  /** TCP keepalive on both legs. */
  tcpKeepAlive: boolean
  /** SNI names served by this route on a shared listener: exact names or "*.suffix" wildcards. */
  serverNames: string[]
  /** The route for clients that send no SNI (or an unmatched one is still refused) on a shared listener. */
  default: boolean
  greeting: GreetingMode
  /** Version string of the gateway-issued greeting; when absent it is learned from the backend. */
  serverVersion?: string
}

/** Routes grouped by listen address: one proxy instance (one child process) per listener. */
export interface ListenerConfig {
  /** "host:port" as normalized. */
  key: string
  listen: HostPort
  /** Forced to 'gateway' when more than one route shares the listener. */
  greeting: GreetingMode
  routes: RouteConfig[]
}

export interface AdminConfig {
  listen: HostPort
  /**
   * On SIGTERM/SIGINT, how long the listeners keep accepting after /readyz turned 503, before they stop
   * accepting and drain; 0 (the default) closes them at once.
   */
  shutdownDelayMs: number
}

export interface GatewayConfig {
  /** Absolute path of the file this came from. */
  sourcePath: string
  log: { level: LogLevel; format: LogFormat }
  admin?: AdminConfig
  routes: RouteConfig[]
}

export function listenKey(listen: HostPort): string {
  return listen.host.includes(':') ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`
}

/** Groups routes by listen address, preserving file order. */
export function groupListeners(routes: readonly RouteConfig[]): ListenerConfig[] {
  const byKey = new Map<string, ListenerConfig>()
  for (const route of routes) {
    const key = listenKey(route.listen)
    let listener = byKey.get(key)
    if (!listener) {
      listener = { key, listen: route.listen, greeting: route.greeting, routes: [] }
      byKey.set(key, listener)
    }
    listener.routes.push(route)
    if (listener.routes.length > 1) listener.greeting = 'gateway'
  }
  return [...byKey.values()]
}
