/**
 * COM_CHANGE_USER (MySQL dev docs "COM_CHANGE_USER"):
 *   0x11, user NUL, auth response (1-byte length with SECURE_CONNECTION, else NUL-terminated), schema NUL,
 *   then optionally: character set (2), auth plugin name NUL (PLUGIN_AUTH), attributes (CONNECT_ATTRS, lenenc).
 */
import { BufferReader, encodeLenenc } from './buffer-reader.js'
import { CLIENT_CONNECT_ATTRS, CLIENT_PLUGIN_AUTH, CLIENT_SECURE_CONNECTION, COM_CHANGE_USER } from './constants.js'

export interface ChangeUser {
  userBytes: Buffer
  user: string
  authResponse: Buffer
  schemaBytes: Buffer
  characterSet?: number
  authPluginName?: string
  attributes?: Buffer
}

export function parseChangeUser(payload: Buffer, capabilities: number): ChangeUser {
  const r = new BufferReader(payload)
  if (r.int1() !== COM_CHANGE_USER) throw new RangeError('not a COM_CHANGE_USER')
  const userBytes = r.nulBytes()
  const authResponse = capabilities & CLIENT_SECURE_CONNECTION ? r.bytes(r.int1()) : r.nulBytes()
  const schemaBytes = r.remaining > 0 ? r.nulBytes() : Buffer.alloc(0)
  const cu: ChangeUser = { userBytes, user: userBytes.toString('utf8'), authResponse, schemaBytes }
  if (r.remaining >= 2) cu.characterSet = r.int2()
  if (capabilities & CLIENT_PLUGIN_AUTH && r.remaining > 0) {
    const rest = r.buf.subarray(r.offset)
    const nul = rest.indexOf(0)
    cu.authPluginName = (nul === -1 ? rest : rest.subarray(0, nul)).toString('latin1')
    r.offset += nul === -1 ? rest.length : nul + 1
  }
  if (capabilities & CLIENT_CONNECT_ATTRS && r.remaining > 0) cu.attributes = r.bytes(r.lenenc())
  return cu
}

export function encodeChangeUser(cu: ChangeUser, capabilities: number, defaultCharset: number): Buffer {
  const parts: Buffer[] = [Buffer.from([COM_CHANGE_USER]), cu.userBytes, Buffer.from([0])]
  if (capabilities & CLIENT_SECURE_CONNECTION) parts.push(Buffer.from([cu.authResponse.length]), cu.authResponse)
  else parts.push(cu.authResponse, Buffer.from([0]))
  parts.push(cu.schemaBytes, Buffer.from([0]))
  const charset = Buffer.alloc(2)
  charset.writeUInt16LE(cu.characterSet ?? defaultCharset)
  parts.push(charset)
  if (capabilities & CLIENT_PLUGIN_AUTH) parts.push(Buffer.from(cu.authPluginName ?? '', 'latin1'), Buffer.from([0]))
  if (capabilities & CLIENT_CONNECT_ATTRS && cu.attributes) parts.push(encodeLenenc(cu.attributes.length), cu.attributes)
  return Buffer.concat(parts)
}
