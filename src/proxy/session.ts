/**
 * One client connection: owns the connection phase as an explicit state machine, then hands both sockets to
 * the byte relay and gets out of the way. Two ways in:
 *  - backend greeting (transparent): dial the backend at once and relay its greeting with CLIENT_SSL adjusted;
 *  - gateway greeting (SNI routing, backend shielding): greet with the gateway's own scramble, finish TLS and
 *    read the HandshakeResponse first, then pick the route and only now dial the backend, which is made to
 *    ask for the account's real plugin with exactly one AuthSwitchRequest (notes §6.1).
 * Every failure that the protocol lets us report reaches the client as an ERR packet with the right sequence id.
 */
import type net from 'node:net'
import tls from 'node:tls'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../log.js'
import type { Outcome } from '../metrics/route-stats.js'
import { GatewayError } from '../errors.js'
import { encodeErr } from '../protocol/err-packet.js'
import { encodeMessage, PacketTooLargeError, SequenceGapError } from '../protocol/packet-framer.js'
import { MalformedPacketError } from '../protocol/buffer-reader.js'
import {
  ER_HANDSHAKE_ERROR,
  ER_NET_PACKET_TOO_LARGE,
  ER_NET_PACKETS_OUT_OF_ORDER,
  ER_UNKNOWN_ERROR,
} from '../protocol/constants.js'
import { Leg, LegClosedError, SequenceError } from './leg.js'
import { Relay, type ClosedBy } from './relay.js'
import type { BackendReads } from './backend-reads.js'
import type { RouteRuntime } from './route-runtime.js'
import { type SessionHost, ClientFacingError } from './session-types.js'
import { runBackendGreetingHandshake } from './handshake-backend-greeting.js'
import { runGatewayGreetingHandshake } from './handshake-gateway-greeting.js'
import { watchChangeUser } from './change-user-flow.js'

export type SessionState =
  | 'accepted'
  | 'connecting-backend'
  | 'awaiting-backend-greeting'
  | 'awaiting-client-hello'
  | 'client-tls'
  | 'awaiting-handshake-response'
  | 'backend-tls'
  | 'authenticating'
  | 'relaying'
  | 'closed'

export class Session {
  state: SessionState = 'accepted'
  route: RouteRuntime | undefined
  client: Leg
  backend: Leg | undefined
  clientTls: tls.TLSSocket | undefined
  backendOnTls = false
  /** Set on a plain backend leg: its reads use the shared buffer (backend-reads.ts). */
  backendReads: BackendReads | undefined
  user: string | undefined
  database: string | undefined
  servername: string | undefined
  tlsVersion: string | undefined
  /** Capabilities and collation the backend received (gateway-greeting mode parses COM_CHANGE_USER with them). */
  capabilities = 0
  collation = 0
  /** Whose turn it is during authentication: decides whether a timeout can still be answered with an ERR. */
  waitingFor: 'client' | 'backend' = 'client'
  readonly startedAt = performance.now()
  #log: Logger | undefined
  #logRoute: string | undefined
  #relay: Relay | undefined
  #deadline: NodeJS.Timeout | undefined
  #closed = false
  #bytesFromClient = 0
  #bytesFromBackend = 0
  #outcome: Outcome = 'ok'
  #errorCode: number | undefined
  #counted = false

  constructor(
    readonly host: SessionHost,
    readonly id: number,
    readonly socket: net.Socket
  ) {
    host.prepareClientSocket(socket)
    this.client = new Leg('client', socket, host.maxHandshakeBytes)
  }

  /**
   * The session's logger, made on first use: pino builds a child's bindings eagerly, and most connections log
   * only their close line (or nothing, below info).
   */
  get log(): Logger {
    return (this.#log ??= this.host.logger.child(this.#logRoute ? { conn: this.id, route: this.#logRoute } : { conn: this.id }))
  }

  /** In gateway-greeting mode the route is known only after routing; the engine's logger lacks it. */
  #logWithRoute(route: RouteRuntime): void {
    if (this.host.greeting !== 'gateway' || this.#logRoute === route.name) return
    this.#logRoute = route.name
    this.#log = undefined
  }

  get debugEnabled(): boolean {
    return this.host.logger.isLevelEnabled('debug')
  }

  get clientAddress(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`
  }

  /** Counts the connection on a route (once): at accept in transparent mode, at routing with SNI. */
  bindRoute(route: RouteRuntime): void {
    // In transparent mode the engine's logger already carries the route.
    this.#logWithRoute(route)
    this.route = route
    if (this.#counted) return
    this.#counted = true
    route.stats.accepted()
    route.open++
  }

  async run(): Promise<void> {
    if (this.debugEnabled) this.log.debug({ client: this.clientAddress }, 'client connected')
    this.#deadline = setTimeout(() => this.#onHandshakeTimeout(), this.host.handshakeTimeoutMs)
    try {
      const result =
        this.host.greeting === 'backend'
          ? await runBackendGreetingHandshake(this)
          : await runGatewayGreetingHandshake(this)
      clearTimeout(this.#deadline)
      if (result === 'authenticated') this.#startRelay()
    } catch (err) {
      clearTimeout(this.#deadline)
      this.#handleFailure(err)
    }
  }

  /** Writes an ERR on the client leg (stamped with its counter) and closes after it is flushed. */
  rejectClient(code: number, sqlState: string, message: string, outcome: Outcome): void {
    this.#errorCode = code
    this.#outcome = outcome
    ;(this.route ?? this.host.fallbackRoute).stats.gatewayError(code)
    if (!this.client.failed && !this.client.socket.destroyed) {
      this.client.write(encodeErr(code, sqlState, message))
      this.client.socket.end()
    }
    this.close('gateway')
  }

  /** Forwards a backend ERR greeting exactly as received (sequence 0) and closes. */
  forwardRawToClient(payload: Buffer, outcome: Outcome, code: number): void {
    this.#errorCode = code
    this.#outcome = outcome
    this.client.socket.end(encodeMessage(0, payload))
    this.close('backend')
  }

  /** Sends a prepared ERR payload on the client leg (its counter stamps the sequence id) and closes. */
  rejectWithPayload(payload: Buffer, outcome: Outcome, code: number): void {
    this.#errorCode = code
    this.#outcome = outcome
    this.client.write(payload)
    this.client.socket.end()
    this.close('backend')
  }

  authFailed(code: number): void {
    this.#errorCode = code
    this.#outcome = 'auth_failed'
    this.client.socket.end()
    this.close('backend')
  }

  #onHandshakeTimeout(): void {
    if (this.#closed || this.state === 'relaying') return
    this.log.debug({ state: this.state }, 'handshake timeout')
    // When the client is the one waiting (for the greeting, or for the backend's answer during auth), it is
    // reading and an ERR reaches it; a client that stalls is not reading, so it is simply cut.
    const clientWaits =
      this.state === 'connecting-backend' ||
      this.state === 'awaiting-backend-greeting' ||
      this.state === 'backend-tls' ||
      (this.state === 'authenticating' && this.waitingFor === 'backend')
    if (clientWaits) {
      const name = (this.route ?? this.host.fallbackRoute).name
      this.rejectClient(ER_UNKNOWN_ERROR, 'HY000', `route ${name}: backend did not answer in time`, 'timeout')
    } else {
      this.#outcome = 'timeout'
      this.close('gateway')
    }
  }

  #handleFailure(err: unknown): void {
    if (this.#closed) return
    const name = (this.route ?? this.host.fallbackRoute).name
    if (err instanceof ClientFacingError) {
      this.rejectClient(err.code, err.sqlState, err.message, err.outcome)
      return
    }
    if (err instanceof PacketTooLargeError) {
      this.rejectClient(ER_NET_PACKET_TOO_LARGE, '08S01', 'Got a packet bigger than the handshake limit', 'client_error')
      return
    }
    if (err instanceof SequenceError || err instanceof SequenceGapError) {
      if (err instanceof SequenceError && err.side === 'backend') {
        this.rejectClient(ER_UNKNOWN_ERROR, 'HY000', `route ${name}: backend protocol error`, 'backend_unavailable')
      } else this.rejectClient(ER_NET_PACKETS_OUT_OF_ORDER, '08S01', 'Got packets out of order', 'client_error')
      return
    }
    if (err instanceof MalformedPacketError) {
      this.rejectClient(ER_HANDSHAKE_ERROR, '08S01', 'Bad handshake', 'client_error')
      return
    }
    if (err instanceof LegClosedError) {
      this.log.debug({ side: err.side, state: this.state }, 'peer closed during handshake')
      if (err.side === 'backend') {
        this.rejectClient(ER_UNKNOWN_ERROR, 'HY000', `route ${name}: backend closed the connection`, 'backend_unavailable')
      } else {
        this.#outcome = this.state === 'client-tls' ? 'tls_failed' : 'client_error'
        this.close('client')
      }
      return
    }
    if (err instanceof GatewayError && err.code === 'GW_ERR_TLS_HANDSHAKE') {
      // Mid-handshake on TLS: a plaintext ERR would reach the client as garbage; the alert or close is the answer.
      this.log.info({ err: { code: err.code, message: err.message }, state: this.state }, 'client TLS handshake failed')
      this.#outcome = 'tls_failed'
      this.close('gateway')
      return
    }
    if (err instanceof GatewayError) {
      this.log.warn({ err: { code: err.code, message: err.message }, state: this.state }, 'handshake failed')
      const outcome: Outcome = err.code === 'GW_ERR_AUTH_RSA' ? 'auth_failed' : 'backend_unavailable'
      this.rejectClient(ER_UNKNOWN_ERROR, 'HY000', `route ${name}: ${err.message}`, outcome)
      return
    }
    const e = err as NodeJS.ErrnoException
    this.log.debug({ err: { message: e.message, code: e.code }, state: this.state }, 'connection error')
    this.#outcome = this.state === 'client-tls' ? 'tls_failed' : 'client_error'
    this.close('client')
  }

  #startRelay(): void {
    const route = this.route!
    const backend = this.backend!
    this.state = 'relaying'
    const handshakeSeconds = (performance.now() - this.startedAt) / 1000
    route.stats.handshakeDone(handshakeSeconds)
    if (this.debugEnabled) this.log.debug({ user: this.user, db: this.database, ms: Math.round(handshakeSeconds * 1000) }, 'authenticated')
    // The relay is wired below in this same tick, so the sockets need not be paused in between.
    const toBackend = this.client.detach({ pause: false })
    const toClient = backend.detach({ pause: false })
    // Bytes that arrived with the last handshake message are counted by the relay when it delivers them.
    this.#bytesFromClient = this.client.bytesRead - toBackend.length
    this.#bytesFromBackend = backend.bytesRead - toClient.length
    route.stats.addBytesFromClient(this.#bytesFromClient)
    route.stats.addBytesFromBackend(this.#bytesFromBackend)
    const stats = route.stats
    const watch =
      this.host.greeting === 'gateway' ? watchChangeUser(this, () => this.#relay!, this.capabilities, this.collation) : undefined
    this.#relay = new Relay(
      this.client.socket,
      backend.socket,
      {
        fromClient: (n) => {
          this.#bytesFromClient += n
          stats.addBytesFromClient(n)
        },
        fromBackend: watch
          ? (n) => {
              this.#bytesFromBackend += n
              stats.addBytesFromBackend(n)
              watch.backendSpoke()
            }
          : (n) => {
              this.#bytesFromBackend += n
              stats.addBytesFromBackend(n)
            },
        finished: (closedBy, err) => this.#relayFinished(closedBy, err),
        inspectClient: watch?.inspect,
      },
      route.config.timeouts.idleMs,
      this.backendReads
    )
    this.#relay.start(toBackend, toClient)
  }

  /** Bytes read by a protocol exchange that ran outside the relay (COM_CHANGE_USER in gateway-greeting mode). */
  countExchangeBytes(fromClient: number, fromBackend: number): void {
    this.#bytesFromClient += fromClient
    this.#bytesFromBackend += fromBackend
    this.route?.stats.addBytesFromClient(fromClient)
    this.route?.stats.addBytesFromBackend(fromBackend)
  }

  #relayFinished(closedBy: ClosedBy, err?: Error): void {
    if (closedBy === 'idle') this.#outcome = 'timeout'
    if (err) this.log.debug({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'relay error')
    this.close(closedBy)
  }

  /** Forcefully ends the session (drain timeout, shutdown). */
  abort(reason: ClosedBy): void {
    if (this.#relay) this.#relay.finish(reason)
    else this.close(reason)
  }

  close(closedBy: ClosedBy | 'gateway'): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#deadline)
    this.state = 'closed'
    if (!this.#relay) {
      // The backend has nothing left to receive. The client may have an ERR pending: end() lets it flush and
      // destroy() follows in case the peer never reads. On TLS only the TLS socket is ended (it flushes the
      // ERR record, then shuts TCP down itself); ending the raw socket too would lose that ERR.
      this.backend?.socket.destroy()
      const client = this.client.socket
      if (!client.destroyed) client.end()
      setTimeout(() => client.destroy(), 1000).unref()
      if (this.socket !== client) setTimeout(() => this.socket.destroy(), 1000).unref()
      this.#bytesFromClient = this.client.bytesRead
      this.#bytesFromBackend = this.backend?.bytesRead ?? 0
      const route = this.route ?? this.host.fallbackRoute
      route.stats.addBytesFromClient(this.#bytesFromClient)
      route.stats.addBytesFromBackend(this.#bytesFromBackend)
    }
    const route = this.route ?? this.host.fallbackRoute
    if (!this.#counted) {
      // Never routed (scanner, failed TLS, unknown SNI): counted once on the listener's fallback route.
      this.#counted = true
      route.stats.accepted()
      route.open++
      this.#logWithRoute(route)
    }
    route.stats.closed(this.#outcome)
    route.open--
    this.host.sessionClosed(this)
    const durationMs = Math.round(performance.now() - this.startedAt)
    this.log.info(
      {
        client: this.clientAddress,
        user: this.user,
        db: this.database,
        sni: this.servername,
        tls: this.tlsVersion,
        backendTls: this.backendOnTls,
        bytesFromClient: this.#bytesFromClient,
        bytesFromBackend: this.#bytesFromBackend,
        durationMs,
        closedBy,
        outcome: this.#outcome,
        errorCode: this.#errorCode,
      },
      'connection closed'
    )
  }
}
