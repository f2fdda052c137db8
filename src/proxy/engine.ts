/**
 * ListenerEngine: everything one proxy instance does for one listener (one route, or several routes sharing a
 * port by SNI). It owns TLS material and per-route stats; the caller owns the net.Server and hands it accepted
 * sockets. (STUB: being implemented; the API below is the contract.)
 */
import type net from 'node:net'
import type { ListenerConfig, LogLevel } from '../config/types.js'
import type { Logger } from '../log.js'
import type { RouteStatsSnapshot } from '../metrics/route-stats.js'
import type { RouteRuntimeInfo } from '../supervisor/ipc.js'

export interface TlsReloadResult {
  route: string
  ok: boolean
  /** Why the new material was refused (old material stays in use). */
  message?: string
}

export class ListenerEngine {
  /** Loads every route's TLS material; rejects with TlsLoadError (code GW_ERR_CERT_LOAD) if any fails. */
  static async create(_listener: ListenerConfig, _logger: Logger): Promise<ListenerEngine> {
    throw new Error('not implemented')
  }
  /** Takes ownership of an accepted client socket. */
  handleConnection(_socket: net.Socket): void {}
  /** Re-reads cert/key/CA files; new handshakes use the new material, open connections are untouched. */
  async reloadTls(_routes?: string[]): Promise<TlsReloadResult[]> {
    return []
  }
  stats(): Record<string, RouteStatsSnapshot> {
    return {}
  }
  info(): RouteRuntimeInfo[] {
    return []
  }
  openConnections(): number {
    return 0
  }
  setLogLevel(_level: LogLevel): void {}
  /**
   * Waits for open connections to end, up to timeoutMs, then destroys the rest. The caller stops accepting
   * first (server.close()). Connections still in the handshake are cut at once (they have no work to lose).
   */
  async drain(_timeoutMs: number): Promise<void> {}
}
