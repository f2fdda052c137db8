/** Protocol::AuthSwitchRequest: 0xFE, plugin name NUL, plugin data (a 1-byte 0xFE alone is the old 3.23 form). */
import { AUTH_SWITCH_HEADER } from './constants.js'

export interface AuthSwitchRequest {
  pluginName: string
  /** Plugin data with the trailing NUL that native/caching_sha2 append removed. */
  data: Buffer
}

/**
 * Plugins whose switch data is the 20-byte scramble followed by a NUL. Others send raw bytes that may end in 0x00
 * (client_ed25519 and parsec: exactly 32 random bytes, MariaDB plugin/auth_ed25519/client_ed25519.c), so their
 * data is returned untouched.
 */
const NUL_TERMINATED_DATA = new Set(['mysql_native_password', 'caching_sha2_password', 'sha256_password'])

export function parseAuthSwitch(payload: Buffer): AuthSwitchRequest | null {
  if (payload[0] !== AUTH_SWITCH_HEADER) return null
  if (payload.length === 1) return { pluginName: 'mysql_old_password', data: Buffer.alloc(0) }
  const nul = payload.indexOf(0, 1)
  if (nul === -1) return { pluginName: payload.toString('latin1', 1), data: Buffer.alloc(0) }
  const pluginName = payload.toString('latin1', 1, nul)
  let data = payload.subarray(nul + 1)
  if (NUL_TERMINATED_DATA.has(pluginName) && data.length > 0 && data[data.length - 1] === 0) {
    data = data.subarray(0, data.length - 1)
  }
  return { pluginName, data }
}
