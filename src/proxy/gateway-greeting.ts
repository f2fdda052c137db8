/** The greeting the gateway sends itself (gateway-greeting mode, and transparent mode when the backend is down). */
import { randomBytes } from 'node:crypto'
import { CLIENT_SSL } from '../protocol/constants.js'
import { encodeGatewayGreeting } from '../protocol/greeting.js'
import type { Session } from './session.js'

/** Collation 45 (utf8mb4_general_ci) exists on every MySQL and MariaDB; 255 does not on older MariaDB. */
const GREETING_COLLATION = 45

/** 20 random bytes in 1..127: some clients treat the scramble as a C string. */
export function gatewayScramble(): Buffer {
  const bytes = randomBytes(20)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (bytes[i]! % 127) + 1
  return bytes
}

/** Writes the greeting on the client leg (seq 0); returns what was announced. */
export function sendGatewayGreeting(session: Session, offerTls: boolean): { serverVersion: string; capabilities: number } {
  const announced = session.host.gatewayGreeting()
  const capabilities = offerTls ? announced.capabilities | CLIENT_SSL : announced.capabilities & ~CLIENT_SSL
  session.client.write(
    encodeGatewayGreeting({
      serverVersion: announced.serverVersion,
      capabilities,
      collation: GREETING_COLLATION,
      scramble: gatewayScramble(),
      authPluginName: 'mysql_native_password',
    })
  )
  return { serverVersion: announced.serverVersion, capabilities: capabilities >>> 0 }
}
