/** The contract between a session and the listener engine that runs it. */
import type net from 'node:net'
import type tls from 'node:tls'
import type { GreetingMode } from '../config/types.js'
import type { Logger } from '../log.js'
import type { Outcome } from '../metrics/route-stats.js'
import type { Greeting } from '../protocol/greeting.js'
import type { RouteRuntime } from './route-runtime.js'
import type { Session } from './session.js'

export interface SessionHost {
  readonly logger: Logger
  readonly greeting: GreetingMode
  readonly maxHandshakeBytes: number
  readonly handshakeTimeoutMs: number
  /**
   * TCP_NODELAY, and keepalive when any route of the listener asks for it, on an accepted client socket (a no-op
   * when the listening socket passes them on).
   */
  prepareClientSocket(socket: net.Socket): void
  readonly routes: readonly RouteRuntime[]
  /** Where connections that never reach a route are counted: the default route, else the first. */
  readonly fallbackRoute: RouteRuntime
  sessionClosed(session: Session): void
  /** Gateway-greeting mode: version string and capabilities to announce. */
  gatewayGreeting(): { serverVersion: string; capabilities: number }
  /** Gateway-greeting mode: remember what a backend announced (version string, capabilities). */
  learnBackend(route: RouteRuntime, greeting: Greeting): void
  /** Gateway-greeting mode: the route for an SNI name (or none sent). */
  routeFor(servername: string | undefined): RouteRuntime | undefined
  /** Gateway-greeting mode: the certificate context to present for an SNI name. */
  contextFor(servername: string | undefined): tls.SecureContext | undefined
}

/** A failure the client is told about with a MySQL ERR packet on its leg. */
export class ClientFacingError extends Error {
  constructor(
    readonly code: number,
    readonly sqlState: string,
    message: string,
    readonly outcome: Outcome
  ) {
    super(message)
  }
}
