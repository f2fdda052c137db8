/** Builders of normalized configs for the supervisor unit tests (what src/config/load.ts would produce). */
import type { GatewayConfig, RouteConfig } from '../../../src/config/types.js'

export function route(name: string, port: number, overrides: Partial<RouteConfig> = {}): RouteConfig {
  return {
    name,
    listen: { host: '127.0.0.1', port },
    backend: { host: '127.0.0.1', port: 3306 },
    tls: { mode: 'disabled', minVersion: 'TLSv1.2' },
    backendTls: { mode: 'disabled' },
    timeouts: { connectMs: 5000, handshakeMs: 8000, idleMs: 0 },
    maxConnections: 100,
    maxHandshakeBytes: 1 << 20,
    drainTimeoutMs: 2000,
    tcpKeepAlive: true,
    serverNames: [],
    default: false,
    greeting: 'backend',
    ...overrides,
  }
}

export function gatewayConfig(routes: RouteConfig[], extra: Partial<GatewayConfig> = {}): GatewayConfig {
  return { sourcePath: '/nonexistent/gateway.yaml', log: { level: 'info', format: 'json' }, routes, ...extra }
}
