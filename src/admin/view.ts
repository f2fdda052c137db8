/**
 * What the admin server needs from the supervisor, and nothing more. The supervisor implements SupervisorView;
 * the admin server only reads through it, so it can never change routing state and tests can hand it a plain
 * object.
 */

/**
 * Lifecycle of one route as the supervisor sees it.
 * - starting: child forked, not yet 'ready'
 * - ready: listening and serving
 * - draining: stopped accepting (removal, replacement or shutdown), open connections finishing
 * - down: child exited unexpectedly; waiting out the restart backoff
 * - stopped: drained and closed (a removed route, or after shutdown)
 */
export type RouteState = 'starting' | 'ready' | 'draining' | 'down' | 'stopped'

/** One row of GET /routes. Plain JSON: no secrets (never key paths or passphrases), only what an operator reads. */
export interface RouteView {
  name: string
  /** "host:port" the route listens on. */
  listen: string
  /** "host:port" of the backend. */
  backend: string
  state: RouteState
  /** Pid of the child serving the route, absent while none runs. */
  pid?: number
  /** Open client connections. */
  open: number
  /** SNI names served on a shared listener. */
  serverNames?: string[]
  /** Certificate currently presented to new handshakes; notAfter as ISO 8601. */
  cert?: { subject: string; notAfter: string }
}

export interface SupervisorView {
  /** true while the supervisor runs */
  healthy(): boolean
  /**
   * true when every route is listening and its child is ready; false while starting, while any route is down,
   * and from the moment a shutdown drain begins
   */
  ready(): boolean
  /** true from the moment a shutdown (SIGTERM/SIGINT) begins, delay included */
  shuttingDown(): boolean
  routes(): RouteView[]
  /** asks every child for a fresh snapshot (bounded, ~1 s) and feeds them to the aggregator */
  refreshStats(): Promise<void>
}
