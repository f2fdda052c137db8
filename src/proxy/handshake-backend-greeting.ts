/**
 * Transparent mode (greeting: backend), notes §3.2:
 *
 *   step               client seq  backend seq  action
 *   greeting           0           0            relay, CLIENT_SSL set (required/preferred) or cleared (disabled)
 *   SSLRequest         1           -            consumed, TLS on the client leg
 *   HandshakeResponse  2 (1 plain) 1            CLIENT_SSL cleared for a plain backend leg
 *   auth round trips   n           m            one counter per leg until OK/ERR
 *
 * With backend TLS the gateway sends its own SSLRequest (backend seq 1) and the HandshakeResponse as seq 2.
 */
import {
  ER_CON_COUNT_ERROR,
  ER_HANDSHAKE_ERROR,
  ER_SECURE_TRANSPORT_REQUIRED,
} from '../protocol/constants.js'
import { greetingWithSsl } from '../protocol/greeting.js'
import {
  classifyFirstPacket,
  encodeHandshakeResponse,
  hasSslFlag,
  parseHandshakeResponse,
  withClientSsl,
  type HandshakeResponse,
} from '../protocol/handshake-response.js'
import { MalformedPacketError } from '../protocol/buffer-reader.js'
import { relayAuth } from './auth-relay.js'
import { sendGatewayGreeting } from './gateway-greeting.js'
import { openBackend, startBackendTls } from './backend-leg.js'
import { upgradeClientTls } from './client-tls.js'
import type { RouteRuntime } from './route-runtime.js'
import { ClientFacingError } from './session-types.js'
import type { Session } from './session.js'

export const BAD_HANDSHAKE = (): ClientFacingError =>
  new ClientFacingError(ER_HANDSHAKE_ERROR, '08S01', 'Bad handshake', 'client_error')

export const INSECURE_TRANSPORT = (): ClientFacingError =>
  new ClientFacingError(
    ER_SECURE_TRANSPORT_REQUIRED,
    'HY000',
    'Connections using insecure transport are prohibited while --require_secure_transport=ON.',
    'rejected_insecure'
  )

export async function runBackendGreetingHandshake(session: Session): Promise<'authenticated' | 'rejected'> {
  const route = session.host.routes[0]!
  session.bindRoute(route)
  if (route.open > route.config.maxConnections) {
    // Sequence 0 and nothing sent to the backend: every client reads an ERR as the first packet.
    throw new ClientFacingError(ER_CON_COUNT_ERROR, '08004', 'Too many connections', 'limit')
  }
  let backend
  try {
    backend = await openBackend(session, route)
  } catch (err) {
    if (err instanceof ClientFacingError && err.outcome === 'backend_unavailable') return refuseAfterOwnGreeting(session, route, err)
    throw err
  }
  if (backend.kind === 'error') {
    session.forwardRawToClient(backend.payload, 'backend_unavailable', backend.code)
    return 'rejected'
  }
  const { greeting } = backend
  const client = session.client
  client.write(greetingWithSsl(backend.payload, route.config.tls.mode !== 'disabled'))
  session.backend!.seq = 1

  session.state = 'awaiting-client-hello'
  const first = (await client.read()).payload
  let responsePayload: Buffer
  switch (classifyFirstPacket(first)) {
    case 'ssl-request':
      if (route.config.tls.mode === 'disabled' || !route.tls) throw BAD_HANDSHAKE()
      session.state = 'client-tls'
      await startClientTls(session, route)
      session.state = 'awaiting-handshake-response'
      responsePayload = (await client.read()).payload
      if (classifyFirstPacket(responsePayload) !== 'handshake-response') throw BAD_HANDSHAKE()
      break
    case 'handshake-response':
      // A plaintext packet claiming CLIENT_SSL is a client that thinks it is on TLS: refuse it.
      if (hasSslFlag(first)) throw BAD_HANDSHAKE()
      if (route.config.tls.mode === 'required') throw INSECURE_TRANSPORT()
      responsePayload = first
      break
    default:
      throw BAD_HANDSHAKE()
  }
  const hr = readHandshakeResponse(session, responsePayload)

  const clientOnTls = session.clientTls !== undefined
  if (route.config.backendTls.mode !== 'disabled') await startBackendTls(session, route, responsePayload)
  let toBackend = withClientSsl(responsePayload, session.backendOnTls)
  let pendingClearPassword: Buffer | undefined
  const plugin = hr.authPluginName || greeting.authPluginName
  if (
    clientOnTls &&
    !session.backendOnTls &&
    plugin === 'sha256_password' &&
    greeting.authPluginName === 'sha256_password' &&
    hr.authResponse.length > 1
  ) {
    // A TLS client sends its sha256_password in clear as the first response; a plain backend would refuse
    // it, so ask for the key instead (`01`) and encrypt it ourselves (notes §4.4).
    pendingClearPassword = Buffer.from(hr.authResponse)
    hr.authResponse.fill(0)
    toBackend = encodeHandshakeResponse({ ...hr, capabilities: hr.capabilities & ~0x800, authResponse: Buffer.from([1]) })
  }
  session.backend!.write(toBackend)
  responsePayload.fill(0, 32)

  session.state = 'authenticating'
  const outcome = await relayAuth({
    client,
    backend: session.backend!,
    clientOnTls,
    backendOnTls: session.backendOnTls,
    plugin,
    scramble: greeting.scramble,
    pendingClearPassword,
    waitingFor: (side) => (session.waitingFor = side),
    rsaUsed: (p) => session.log.debug({ plugin: p }, 'gateway completed RSA password exchange'),
  })
  if (!outcome.ok) {
    session.authFailed(outcome.err.code)
    return 'rejected'
  }
  return 'authenticated'
}

/**
 * The backend is down, so there is no greeting to relay. An ERR as the very first packet is legal, but clients
 * that start TLS by default (the Debian 10.11 `mariadb` CLI) refuse to trust it and print "Received error
 * packet before completion of TLS handshake". So greet ourselves, let the client finish TLS and send its
 * HandshakeResponse, and answer that with the ERR: every client then shows the plain MySQL error.
 */
async function refuseAfterOwnGreeting(session: Session, route: RouteRuntime, reason: ClientFacingError): Promise<'rejected'> {
  const client = session.client
  try {
    sendGatewayGreeting(session, route.config.tls.mode !== 'disabled' && route.tls !== undefined)
    session.state = 'awaiting-client-hello'
    const first = (await client.read()).payload
    if (classifyFirstPacket(first) === 'ssl-request' && route.tls) {
      session.state = 'client-tls'
      await startClientTls(session, route)
      session.state = 'awaiting-handshake-response'
      await client.read()
    }
  } catch (err) {
    session.log.debug({ err: { message: (err as Error).message } }, 'client left before hearing the backend is unavailable')
  }
  session.rejectClient(reason.code, reason.sqlState, reason.message, reason.outcome)
  return 'rejected'
}

/** Parses the client's HandshakeResponse (1043 if malformed) and notes who is logging in, for the logs. */
export function readHandshakeResponse(session: Session, payload: Buffer): HandshakeResponse {
  let hr: HandshakeResponse
  try {
    hr = parseHandshakeResponse(payload)
  } catch (err) {
    if (err instanceof MalformedPacketError) throw BAD_HANDSHAKE()
    throw err
  }
  session.user = hr.user
  session.database = hr.database
  return hr
}

export async function startClientTls(session: Session, route: RouteRuntime): Promise<void> {
  const material = route.tls!
  const secure = await upgradeClientTls(session.client, {
    secureContext: material.context,
    requireClientCert: material.requestClientCert,
  })
  noteClientTls(session, secure)
  route.stats.tlsEstablished(session.tlsVersion ?? 'unknown')
  session.client.reattach(secure)
}

export function noteClientTls(session: Session, secure: import('node:tls').TLSSocket): void {
  session.clientTls = secure
  session.tlsVersion = secure.getProtocol() ?? undefined
  const servername = (secure as unknown as { servername?: string | false }).servername
  if (servername) session.servername = servername
  if (!session.debugEnabled) return
  // Reading the cipher and the peer certificate builds objects per connection: only when they are logged.
  const cipher = secure.getCipher()
  const peer = secure.getPeerCertificate()
  const subject = peer && peer.subject ? Object.entries(peer.subject).map(([k, v]) => `${k}=${v}`).join(', ') : undefined
  session.log.debug(
    { tls: session.tlsVersion, cipher: cipher?.name, sni: session.servername, clientCert: subject, resumed: secure.isSessionReused() },
    'tls established'
  )
}
