/**
 * Typed messages between the supervisor and a proxy child (one child per listener).
 * Sent with child_process IPC (JSON serialization). The listening socket travels as the send handle of
 * the 'start' message: the supervisor binds it, the child calls listen() on it, and the supervisor keeps its
 * copy open so a restarted or replacing child takes over the same port with nothing refused meanwhile.
 */
import type { ListenerConfig, LogFormat, LogLevel } from '../config/types.js'
import type { RouteStatsSnapshot } from '../metrics/route-stats.js'

export type ToChild =
  /** Sent once with the listening handle. */
  | { type: 'start'; listener: ListenerConfig; log: { level: LogLevel; format: LogFormat } }
  /** Re-read certificate, key and CA files of the named routes (all when omitted); keep old on failure. */
  | { type: 'reload-tls'; routes?: string[] }
  /** log.level changed on reload: applied without a restart. */
  | { type: 'set-log-level'; level: LogLevel }
  /** Stop accepting, let open connections finish for up to timeoutMs, then close them and exit 0. */
  | { type: 'drain'; timeoutMs: number }
  /** Ask for a stats snapshot; answered by a 'stats' message carrying the same id. */
  | { type: 'collect'; id: number }
  /**
   * Routes of a shared (gateway-greeting) listener changed: apply them in this process, so tenants that did not
   * change keep their open connections. Answered by 'updated' with the same id.
   */
  | { type: 'update'; id: number; listener: ListenerConfig }

export interface RouteRuntimeInfo {
  route: string
  open: number
  /** Certificate currently served to new handshakes. */
  cert?: { subject: string; notAfter: string; notAfterUnix: number }
}

export type FromChild =
  | { type: 'ready'; pid: number }
  /** Start failed (listen error, unreadable certificate...); the child exits after sending it. */
  | { type: 'fatal'; code: string; message: string }
  /**
   * Answer to 'collect' (same id). Also sent unasked with `final: true` (id -1) right before a drained child
   * exits, so counters of its last moments are not lost.
   */
  | { type: 'stats'; id: number; final?: boolean; routes: Record<string, RouteStatsSnapshot>; info: RouteRuntimeInfo[] }
  | { type: 'tls-reloaded'; route: string; ok: boolean; message?: string }
  | { type: 'updated'; id: number; ok: boolean; message?: string }
  | { type: 'draining'; open: number }
  | { type: 'drained' }
