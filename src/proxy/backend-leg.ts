/** Opening the backend leg: dial, read its greeting, and (if configured) switch it to TLS. */
import { performance } from 'node:perf_hooks'
import { BackendError } from '../errors.js'
import { ERR_HEADER, ER_UNKNOWN_ERROR, CLIENT_SSL } from '../protocol/constants.js'
import { parseErr } from '../protocol/err-packet.js'
import { parseGreeting, type Greeting } from '../protocol/greeting.js'
import { sslRequestFor } from '../protocol/handshake-response.js'
import { dialBackend, upgradeBackend } from './backend-dial.js'
import { BackendReads } from './backend-reads.js'
import { Leg, LegClosedError } from './leg.js'
import type { RouteRuntime } from './route-runtime.js'
import { ClientFacingError } from './session-types.js'
import type { Session } from './session.js'

export type BackendGreeting = { kind: 'greeting'; payload: Buffer; greeting: Greeting } | { kind: 'error'; payload: Buffer; code: number }

function unavailable(route: RouteRuntime, reason: string): ClientFacingError {
  // The message names the route, never the backend's address: clients are tenants, not operators.
  return new ClientFacingError(ER_UNKNOWN_ERROR, 'HY000', `route ${route.name}: backend unavailable (${reason})`, 'backend_unavailable')
}

export async function openBackend(session: Session, route: RouteRuntime): Promise<BackendGreeting> {
  const cfg = route.config
  session.state = 'connecting-backend'
  const started = performance.now()
  let socket
  const reads = cfg.backendTls.mode === 'disabled' ? new BackendReads() : undefined
  try {
    socket = await dialBackend(cfg.backend, cfg.timeouts.connectMs, cfg.tcpKeepAlive, { get aborted() { return session.state === 'closed' } }, reads)
  } catch (err) {
    const reason = err instanceof BackendError ? err.message : 'connection failed'
    session.log.warn({ err: { code: (err as BackendError).code, message: reason } }, 'backend unavailable')
    throw unavailable(route, reason)
  }
  route.stats.backendConnected((performance.now() - started) / 1000)
  const leg = new Leg('backend', socket, session.host.maxHandshakeBytes)
  session.backend = leg
  session.backendReads = reads
  session.state = 'awaiting-backend-greeting'
  // timeouts.connect covers the greeting too: a backend that accepts TCP but never speaks is unavailable.
  const remainingMs = Math.max(1, cfg.timeouts.connectMs - (performance.now() - started))
  const payload = await readGreeting(leg, remainingMs).catch((err: unknown) => {
    if (err instanceof ClientFacingError) throw err
    leg.socket.destroy()
    const reason = err instanceof LegClosedError ? 'closed before its greeting' : 'no greeting'
    throw unavailable(route, reason)
  })
  if (payload === null) {
    leg.socket.destroy()
    session.log.warn({ ms: cfg.timeouts.connectMs }, 'backend sent no greeting in time')
    throw unavailable(route, `no greeting within ${cfg.timeouts.connectMs} ms`)
  }
  if (payload[0] === ERR_HEADER) return { kind: 'error', payload, code: parseErr(payload).code }
  let greeting: Greeting
  try {
    greeting = parseGreeting(payload)
  } catch {
    throw unavailable(route, 'unrecognized greeting')
  }
  if (cfg.backendTls.mode !== 'disabled' && !(greeting.capabilities & CLIENT_SSL)) {
    throw unavailable(route, 'backend does not offer TLS but backendTls.mode requires it')
  }
  return { kind: 'greeting', payload, greeting }
}

/** The greeting payload, or null when the backend stays silent for timeoutMs. */
function readGreeting(leg: Leg, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(null), timeoutMs)
    leg.read().then(
      (m) => {
        clearTimeout(timer)
        resolve(m.payload)
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err)
      }
    )
  })
}

/** Sends the gateway's SSLRequest (seq 1) built from the client's HandshakeResponse, then upgrades. */
export async function startBackendTls(session: Session, route: RouteRuntime, handshakeResponse: Buffer): Promise<void> {
  const leg = session.backend!
  session.state = 'backend-tls'
  leg.write(sslRequestFor(handshakeResponse))
  const raw = leg.socket
  leg.detach()
  try {
    const secure = await upgradeBackend(raw, route.config.backend, route.config.backendTls, route.config.timeouts.connectMs)
    leg.reattach(secure)
    session.backendOnTls = true
  } catch (err) {
    const reason = err instanceof BackendError ? err.message : 'TLS failed'
    session.log.warn({ err: { code: (err as BackendError).code, message: reason } }, 'backend TLS failed')
    // Node's verification messages quote the certificate's names and IP addresses: those stay in the log.
    const cause = (err as { cause?: { code?: string } }).cause?.code
    const what = cause === 'ERR_TLS_CERT_ALTNAME_INVALID' ? 'certificate name mismatch' : (cause ?? 'handshake error')
    throw unavailable(route, (err as BackendError).code === 'GW_ERR_BACKEND_TIMEOUT' ? reason : `backend TLS failed: ${what}`)
  }
}
