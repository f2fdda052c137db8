/**
 * The authentication phase after the HandshakeResponse: relay backend and client messages, any number of
 * round trips, until the backend says OK or ERR (shared/docs/mysql-protocol-notes.md §3.3, §4).
 * Two exchanges are completed by the gateway itself because a TLS client sends its password in clear and a
 * plain backend refuses clear text on an insecure transport:
 *  - caching_sha2_password full authentication (`01 04`): fetch the backend's RSA key, send RSA-OAEP;
 *  - sha256_password: the same with request byte `01`.
 * The clear password lives only in a local buffer that is zeroed after use and is never logged.
 */
import {
  AUTH_MORE_DATA_HEADER,
  AUTH_SWITCH_HEADER,
  CACHING_SHA2_FAST_AUTH_OK,
  CACHING_SHA2_PERFORM_FULL_AUTH,
  CACHING_SHA2_REQUEST_PUBLIC_KEY,
  ERR_HEADER,
  OK_HEADER,
  SHA256_REQUEST_PUBLIC_KEY,
} from '../protocol/constants.js'
import { parseAuthSwitch } from '../protocol/auth-switch.js'
import { parseErr, type ErrPacket } from '../protocol/err-packet.js'
import { encryptPassword } from '../protocol/rsa-password.js'
import { GatewayError } from '../errors.js'
import type { Leg } from './leg.js'

/** Real exchanges take 1-4 round trips; PAM/OTP dialogs a few more. Anything past this is a loop. */
const MAX_ROUND_TRIPS = 64

export interface AuthRelayOptions {
  client: Leg
  backend: Leg
  clientOnTls: boolean
  backendOnTls: boolean
  /** Plugin and nonce in force when the HandshakeResponse was sent (updated by each AuthSwitchRequest). */
  plugin: string
  scramble: Buffer
  /**
   * sha256_password clear password that was taken out of the HandshakeResponse (which then asked the backend
   * for its key instead); the backend's next packet is the key.
   */
  pendingClearPassword?: Buffer
  /** Tells the session whose turn it is, so a handshake timeout can answer a waiting client. */
  waitingFor(side: 'client' | 'backend'): void
  rsaUsed(plugin: string): void
}

export type AuthOutcome = { ok: true } | { ok: false; err: ErrPacket }

export async function relayAuth(o: AuthRelayOptions): Promise<AuthOutcome> {
  const { client, backend } = o
  let plugin = o.plugin
  let scramble = o.scramble
  let pendingClear = o.pendingClearPassword
  const gatewayDoesRsa = o.clientOnTls && !o.backendOnTls

  const sendEncrypted = (clear: Buffer, keyPacket: Buffer): void => {
    const pem = keyPacket.subarray(keyPacket[0] === AUTH_MORE_DATA_HEADER ? 1 : 0)
    try {
      backend.write(encryptPassword(clear, scramble, pem))
    } catch (err) {
      throw new GatewayError('GW_ERR_AUTH_RSA', `RSA password exchange failed: ${(err as Error).message}`)
    } finally {
      clear.fill(0)
    }
    o.rsaUsed(plugin)
  }

  for (let round = 0; round < MAX_ROUND_TRIPS; round++) {
    o.waitingFor('backend')
    const { payload } = await backend.read()
    const header = payload[0]

    if (pendingClear && header === AUTH_MORE_DATA_HEADER) {
      sendEncrypted(pendingClear, payload)
      pendingClear = undefined
      continue
    }
    if (header === OK_HEADER) {
      client.write(payload)
      return { ok: true }
    }
    if (header === ERR_HEADER) {
      client.write(payload)
      return { ok: false, err: parseErr(payload) }
    }
    if (header === AUTH_SWITCH_HEADER) {
      const request = parseAuthSwitch(payload)!
      plugin = request.pluginName
      if (request.data.length >= 20) scramble = Buffer.from(request.data.subarray(0, 20))
    }
    client.write(payload)

    const status = header === AUTH_MORE_DATA_HEADER && payload.length === 2 ? payload[1] : -1
    // Fast authentication success: the backend's OK follows without a client turn.
    if (plugin === 'caching_sha2_password' && status === CACHING_SHA2_FAST_AUTH_OK) continue

    o.waitingFor('client')
    const reply = (await client.read()).payload

    const requestByte = gatewayDoesRsa ? rsaRequestByte(plugin, status, reply) : undefined
    if (requestByte !== undefined) {
      backend.write(Buffer.from([requestByte]))
      o.waitingFor('backend')
      const key = (await backend.read()).payload
      if (key[0] !== AUTH_MORE_DATA_HEADER) return forwardFinal(o, key)
      sendEncrypted(Buffer.from(reply), key)
      reply.fill(0)
      continue
    }
    backend.write(reply)
  }
  throw new GatewayError('GW_ERR_BACKEND_PROTOCOL', `authentication did not finish after ${MAX_ROUND_TRIPS} round trips`)
}

/** A backend answer other than the key (normally an ERR): pass it on and end the phase. */
function forwardFinal(o: AuthRelayOptions, payload: Buffer): AuthOutcome {
  o.client.write(payload)
  if (payload[0] === OK_HEADER) return { ok: true }
  return { ok: false, err: parseErr(payload) }
}

/**
 * Whether the client's reply is a clear password the gateway must encrypt, and with which key-request byte:
 * caching_sha2 after `01 04` (unless the client asked for the key itself, believing the link insecure), or a
 * sha256_password response.
 */
function rsaRequestByte(plugin: string, status: number | undefined, reply: Buffer): number | undefined {
  if (plugin === 'caching_sha2_password' && status === CACHING_SHA2_PERFORM_FULL_AUTH) {
    return reply.length === 1 && reply[0] === CACHING_SHA2_REQUEST_PUBLIC_KEY ? undefined : CACHING_SHA2_REQUEST_PUBLIC_KEY
  }
  if (plugin === 'sha256_password' && isClearPassword(reply)) return SHA256_REQUEST_PUBLIC_KEY
  return undefined
}

/** sha256_password: an empty password (`00` or nothing) is accepted in clear; `01` is the client asking for the key. */
function isClearPassword(reply: Buffer): boolean {
  if (reply.length === 0) return false
  if (reply.length === 1 && (reply[0] === 0x00 || reply[0] === SHA256_REQUEST_PUBLIC_KEY)) return false
  return true
}
