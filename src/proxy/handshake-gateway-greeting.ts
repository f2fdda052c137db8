/**
 * Gateway-greeting mode (SNI routing and backend shielding), notes §6.1:
 * greet with our own scramble, take the SSLRequest, finish TLS (the certificate is picked by SNI), read the
 * HandshakeResponse (hashed with our scramble, so useless upstream), pick the route, and only then dial the
 * backend. It receives the client's HandshakeResponse with an EMPTY auth response and the plugin name
 * `gw_probe`, which no server has, so it answers with exactly one AuthSwitchRequest for the account's real
 * plugin and nonce; that switch is relayed to the client and authentication continues as in transparent mode.
 * Scanners, failed TLS handshakes and stalled clients therefore never open a backend connection.
 */
import {
  CLIENT_COMPRESS,
  CLIENT_DEPRECATE_EOF,
  CLIENT_LOCAL_FILES,
  CLIENT_LONG_PASSWORD,
  CLIENT_MULTI_RESULTS,
  CLIENT_MULTI_STATEMENTS,
  CLIENT_OPTIONAL_RESULTSET_METADATA,
  CLIENT_PLUGIN_AUTH,
  CLIENT_PROTOCOL_41,
  CLIENT_PS_MULTI_RESULTS,
  CLIENT_QUERY_ATTRIBUTES,
  CLIENT_SESSION_TRACK,
  CLIENT_SSL,
  CLIENT_ZSTD_COMPRESSION,
  ER_ACCESS_DENIED_ERROR,
  ER_CON_COUNT_ERROR,
  ER_NOT_SUPPORTED_AUTH_MODE,
  ER_UNKNOWN_ERROR,
  PROBE_PLUGIN_NAME,
} from '../protocol/constants.js'
import { withSqlState } from '../protocol/err-packet.js'
import { sendGatewayGreeting } from './gateway-greeting.js'
import {
  classifyFirstPacket,
  encodeHandshakeResponse,
  hasSslFlag,
  withClientSsl,
} from '../protocol/handshake-response.js'
import { relayAuth } from './auth-relay.js'
import { openBackend, startBackendTls } from './backend-leg.js'
import { peerVerifyError, upgradeClientTls } from './client-tls.js'
import { BAD_HANDSHAKE, INSECURE_TRANSPORT, noteClientTls, readHandshakeResponse } from './handshake-backend-greeting.js'
import { LegClosedError } from './leg.js'
import type { RouteRuntime } from './route-runtime.js'
import { ClientFacingError } from './session-types.js'
import type { Session } from './session.js'

/**
 * Capabilities that change the command-phase byte format. After authentication bytes are copied verbatim, so
 * the client and the backend must agree on every one of them.
 */
const FORMAT_BITS =
  CLIENT_DEPRECATE_EOF |
  CLIENT_SESSION_TRACK |
  CLIENT_QUERY_ATTRIBUTES |
  CLIENT_OPTIONAL_RESULTSET_METADATA |
  CLIENT_COMPRESS |
  CLIENT_ZSTD_COMPRESSION |
  CLIENT_MULTI_RESULTS |
  CLIENT_PS_MULTI_RESULTS |
  CLIENT_MULTI_STATEMENTS |
  CLIENT_LOCAL_FILES

export async function runGatewayGreetingHandshake(session: Session): Promise<'authenticated' | 'rejected'> {
  const host = session.host
  const client = session.client
  const announced = sendGatewayGreeting(session, true)

  session.state = 'awaiting-client-hello'
  const first = (await client.read()).payload
  let route: RouteRuntime | undefined
  let responsePayload: Buffer
  switch (classifyFirstPacket(first)) {
    case 'ssl-request': {
      session.state = 'client-tls'
      const secure = await upgradeClientTls(client, {
        secureContext: host.contextFor(undefined),
        SNICallback: (name, cb) => cb(null, host.contextFor(name)),
        requireClientCert: false,
        requestClientCert: host.routes.some((r) => r.tls?.requestClientCert),
      })
      noteClientTls(session, secure)
      client.reattach(secure)
      session.state = 'awaiting-handshake-response'
      responsePayload = (await client.read()).payload
      if (classifyFirstPacket(responsePayload) !== 'handshake-response') throw BAD_HANDSHAKE()
      route = chooseRoute(session)
      // The certificate was verified against the CA of the context SNI picked, i.e. this route's clientCA.
      if (route.tls?.requestClientCert && peerVerifyError(secure) !== null) {
        throw new ClientFacingError(ER_ACCESS_DENIED_ERROR, '28000', `route ${route.name} requires a trusted client certificate`, 'tls_failed')
      }
      route.stats.tlsEstablished(session.tlsVersion ?? 'unknown')
      break
    }
    case 'handshake-response':
      if (hasSslFlag(first)) throw BAD_HANDSHAKE()
      route = chooseRoute(session)
      if (route.config.tls.mode === 'required') throw INSECURE_TRANSPORT()
      responsePayload = first
      break
    default:
      throw BAD_HANDSHAKE()
  }
  session.bindRoute(route)
  if (route.open > route.config.maxConnections) {
    throw new ClientFacingError(ER_CON_COUNT_ERROR, '08004', 'Too many connections', 'limit')
  }
  const hr = readHandshakeResponse(session, responsePayload)
  if (!(hr.capabilities & CLIENT_PROTOCOL_41) || !(hr.capabilities & CLIENT_PLUGIN_AUTH)) {
    throw new ClientFacingError(
      ER_NOT_SUPPORTED_AUTH_MODE,
      '08004',
      'Client does not support authentication protocol requested by server; consider upgrading MySQL client',
      'client_error'
    )
  }
  // The greeting never offers compression (COM_CHANGE_USER must stay readable), yet PHP's mysqlnd asks for it
  // anyway and then compresses. Dropping the bit would leave it waiting forever on an uncompressed server.
  if (hr.capabilities & (CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION) & ~announced.capabilities) {
    throw new ClientFacingError(
      ER_UNKNOWN_ERROR,
      'HY000',
      `route ${route.name}: this listener does not offer protocol compression; connect without it`,
      'client_error'
    )
  }

  const backend = await openBackend(session, route)
  if (backend.kind === 'error') {
    // Inside the auth phase the client expects 4.1-style ERRs, so add the SQLSTATE marker the greeting lacks.
    session.rejectWithPayload(withSqlState(backend.payload), 'backend_unavailable', backend.code)
    return 'rejected'
  }
  const { greeting } = backend
  host.learnBackend(route, greeting)
  // Clients set bits we never offered (mysql2 sends QUERY_ATTRIBUTES regardless); what they negotiated is
  // the intersection with our greeting, and exactly that must reach the backend.
  const negotiated = hr.capabilities & announced.capabilities
  const missing = negotiated & FORMAT_BITS & ~greeting.capabilities
  if (missing) {
    throw new ClientFacingError(
      ER_UNKNOWN_ERROR,
      'HY000',
      `route ${route.name}: backend lacks capabilities the client negotiated (0x${missing.toString(16)})`,
      'backend_unavailable'
    )
  }
  // CLIENT_LONG_PASSWORD (CLIENT_MYSQL) makes a MariaDB backend ignore the extended-capability word.
  session.capabilities = ((negotiated & greeting.capabilities) | CLIENT_PLUGIN_AUTH | CLIENT_LONG_PASSWORD) & ~CLIENT_SSL
  session.collation = hr.collation
  const probe = encodeHandshakeResponse({
    ...hr,
    capabilities: session.capabilities,
    extendedCapabilities: 0,
    authResponse: Buffer.alloc(0),
    authPluginName: PROBE_PLUGIN_NAME,
  })
  if (route.config.backendTls.mode !== 'disabled') await startBackendTls(session, route, probe)
  const backendLeg = session.backend!
  backendLeg.write(withClientSsl(probe, session.backendOnTls))

  session.state = 'authenticating'
  try {
    const outcome = await relayAuth({
      client,
      backend: backendLeg,
      clientOnTls: session.clientTls !== undefined,
      backendOnTls: session.backendOnTls,
      plugin: PROBE_PLUGIN_NAME,
      scramble: greeting.scramble,
      waitingFor: (side) => (session.waitingFor = side),
      rsaUsed: (p) => session.log.debug({ plugin: p }, 'gateway completed RSA password exchange'),
    })
    if (!outcome.ok) {
      session.authFailed(outcome.err.code)
      return 'rejected'
    }
  } catch (err) {
    if (err instanceof LegClosedError && err.side === 'client' && session.waitingFor === 'client') {
      // An empty answer makes the backend count a failed login, not a handshake error towards
      // max_connect_errors, which would block the gateway's address for every tenant (error 1129).
      backendLeg.write(Buffer.alloc(0))
    }
    throw err
  }
  return 'authenticated'
}

function chooseRoute(session: Session): RouteRuntime {
  const route = session.host.routeFor(session.servername)
  if (route) return route
  const fallback = session.host.fallbackRoute
  if (session.servername) fallback.stats.unmatchedSni()
  session.log.info({ sni: session.servername }, 'no route for server name')
  throw new ClientFacingError(
    ER_ACCESS_DENIED_ERROR,
    '28000',
    session.servername
      ? `Access denied: no route for server name '${session.servername}' on this listener`
      : 'Access denied: this listener routes by TLS server name (SNI) and has no default route',
    'client_error'
  )
}
