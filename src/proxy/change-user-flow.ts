/**
 * COM_CHANGE_USER in gateway-greeting mode. The client hashes its new password with whatever scramble it kept
 * (often the gateway's own, which the backend never issued), so the command is rewritten like the first login:
 * empty auth data and the probe plugin name, which makes the backend answer with exactly one
 * AuthSwitchRequest carrying a fresh nonce. The exchange then runs through the same auth relay as the
 * connection phase (including the RSA step on a plain backend leg), and the byte copy resumes after OK/ERR.
 * Compression is never offered in this mode, so the command stream can be read.
 */
import { CommandTracker } from '../protocol/command-tracker.js'
import { encodeChangeUser, parseChangeUser } from '../protocol/change-user.js'
import { encodeErr } from '../protocol/err-packet.js'
import { PROBE_PLUGIN_NAME } from '../protocol/constants.js'
import { relayAuth } from './auth-relay.js'
import { Leg } from './leg.js'
import type { Relay } from './relay.js'
import type { Session } from './session.js'

/** ER_UNKNOWN_COM_ERROR: what MySQL Router answers for a COM_CHANGE_USER it cannot parse. */
const ER_UNKNOWN_COM_ERROR = 1047

export interface ChangeUserWatch {
  inspect(chunk: Buffer): boolean
  backendSpoke(): void
}

export function watchChangeUser(session: Session, relay: () => Relay, capabilities: number, collation: number): ChangeUserWatch {
  const tracker = new CommandTracker()
  return {
    backendSpoke: () => {
      tracker.backendSpoke = true
    },
    inspect: (chunk) => {
      const { forward, changeUser } = tracker.push(chunk)
      if (forward.length > 0) relay().forwardToBackend(forward)
      if (changeUser) {
        relay().suspend()
        runChangeUser(session, relay(), changeUser, capabilities, collation).then(
          () => tracker.reset(),
          (err: Error) => {
            session.log.debug({ err: { message: err.message } }, 'change user failed')
            relay().finish('error', err)
          }
        )
      }
      return false
    },
  }
}

async function runChangeUser(session: Session, relay: Relay, first: Buffer, capabilities: number, collation: number): Promise<void> {
  const limit = session.host.maxHandshakeBytes
  const client = new Leg('client', relay.client, limit)
  const backend = new Leg('backend', relay.backend, limit)
  client.feed(first)
  relay.client.resume()
  relay.backend.resume()
  const { payload } = await client.read()
  let request
  try {
    request = parseChangeUser(payload, capabilities)
  } catch {
    client.write(encodeErr(ER_UNKNOWN_COM_ERROR, '08S01', 'Unknown command'))
    resumeRelay(session, relay, client, backend)
    return
  }
  session.user = request.user
  backend.write(
    encodeChangeUser({ ...request, authResponse: Buffer.alloc(0), authPluginName: PROBE_PLUGIN_NAME }, capabilities, collation)
  )
  payload.fill(0)
  const outcome = await relayAuth({
    client,
    backend,
    clientOnTls: session.clientTls !== undefined,
    backendOnTls: session.backendOnTls,
    plugin: PROBE_PLUGIN_NAME,
    scramble: Buffer.alloc(20),
    waitingFor: () => {},
    rsaUsed: (p) => session.log.debug({ plugin: p }, 'gateway completed RSA password exchange'),
  })
  session.log.debug({ user: request.user, ok: outcome.ok }, 'change user')
  resumeRelay(session, relay, client, backend)
}

/**
 * Hands the sockets back to the relay. The relay already counted the bytes it fed the exchange and will count
 * the remainders it is given back, so what is added here is what the exchange itself read, less the remainders.
 */
function resumeRelay(session: Session, relay: Relay, client: Leg, backend: Leg): void {
  const toBackend = client.detach()
  const toClient = backend.detach()
  session.countExchangeBytes(client.bytesRead - toBackend.length, backend.bytesRead - toClient.length)
  relay.resume(toBackend, toClient)
}
