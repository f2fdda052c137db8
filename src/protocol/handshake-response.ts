/**
 * Protocol::SSLRequest and Protocol::HandshakeResponse41 (client -> server).
 *
 *   0   4   client capabilities        4   4   max packet size        8   1   collation
 *   9   19  zeros                      28  4   MariaDB extended capabilities (when bit 0 is clear), else zeros
 *   32  ..  user NUL; auth response (lenenc with PLUGIN_AUTH_LENENC_CLIENT_DATA, else 1-byte length);
 *           database NUL (CONNECT_WITH_DB); client plugin NUL (PLUGIN_AUTH); attributes (CONNECT_ATTRS,
 *           lenenc total length); zstd level (ZSTD_COMPRESSION)
 *
 * The SSLRequest is exactly the first 32 bytes, with CLIENT_SSL set.
 */
import { BufferReader, encodeLenenc, MalformedPacketError } from './buffer-reader.js'
import {
  CLIENT_CONNECT_ATTRS,
  CLIENT_CONNECT_WITH_DB,
  CLIENT_LONG_PASSWORD,
  CLIENT_PLUGIN_AUTH,
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
  CLIENT_PROTOCOL_41,
  CLIENT_SECURE_CONNECTION,
  CLIENT_SSL,
  CLIENT_ZSTD_COMPRESSION,
  SSL_REQUEST_LENGTH,
} from './constants.js'

export interface HandshakeResponse {
  capabilities: number
  maxPacketSize: number
  collation: number
  extendedCapabilities: number
  /** Raw bytes in the client's character set; `user` is their UTF-8 reading for logs. */
  userBytes: Buffer
  user: string
  authResponse: Buffer
  database?: string
  databaseBytes?: Buffer
  authPluginName?: string
  /** The attribute key/value pairs exactly as sent, without the leading total length. */
  attributes?: Buffer
  zstdLevel?: number
}

export type FirstPacketKind = 'ssl-request' | 'handshake-response' | 'malformed'

/**
 * Classifies the client's first packet (seq 1). 32 bytes with CLIENT_SSL is an SSLRequest; a real
 * HandshakeResponse is at least 34 bytes (user NUL + auth length), so the length alone is unambiguous.
 */
export function classifyFirstPacket(payload: Buffer): FirstPacketKind {
  if (payload.length < 4) return 'malformed'
  const caps = payload.readUInt32LE(0)
  const ssl = (caps & CLIENT_SSL) !== 0
  if (payload.length === SSL_REQUEST_LENGTH) return ssl ? 'ssl-request' : 'malformed'
  if (payload.length < SSL_REQUEST_LENGTH) return 'malformed'
  return 'handshake-response'
}

export function hasSslFlag(payload: Buffer): boolean {
  return payload.length >= 4 && (payload.readUInt32LE(0) & CLIENT_SSL) !== 0
}

/** Copy of a HandshakeResponse/SSLRequest with only CLIENT_SSL changed (the rest stays byte-identical). */
export function withClientSsl(payload: Buffer, ssl: boolean): Buffer {
  const out = Buffer.from(payload)
  out[1] = ssl ? out[1]! | (CLIENT_SSL >> 8) : out[1]! & ~(CLIENT_SSL >> 8)
  return out
}

export function parseHandshakeResponse(payload: Buffer): HandshakeResponse {
  const r = new BufferReader(payload)
  const capabilities = r.int4()
  if (!(capabilities & CLIENT_PROTOCOL_41)) throw new MalformedPacketError('client does not speak protocol 4.1')
  const maxPacketSize = r.int4()
  const collation = r.int1()
  r.bytes(19)
  const ext = r.int4()
  const userBytes = r.nulBytes()
  let authResponse: Buffer
  if (capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = r.bytes(r.lenenc())
  else if (capabilities & CLIENT_SECURE_CONNECTION) authResponse = r.bytes(r.int1())
  else authResponse = r.nulBytes()
  const hr: HandshakeResponse = {
    capabilities,
    maxPacketSize,
    collation,
    extendedCapabilities: capabilities & CLIENT_LONG_PASSWORD ? 0 : ext,
    userBytes,
    user: userBytes.toString('utf8'),
    authResponse,
  }
  if (capabilities & CLIENT_CONNECT_WITH_DB && r.remaining > 0) {
    hr.databaseBytes = r.nulBytes()
    hr.database = hr.databaseBytes.toString('utf8')
  }
  if (capabilities & CLIENT_PLUGIN_AUTH && r.remaining > 0) {
    // Some clients end the packet with the plugin name and no NUL.
    const rest = r.buf.subarray(r.offset)
    const nul = rest.indexOf(0)
    hr.authPluginName = (nul === -1 ? rest : rest.subarray(0, nul)).toString('latin1')
    r.offset += nul === -1 ? rest.length : nul + 1
  }
  if (capabilities & CLIENT_CONNECT_ATTRS && r.remaining > 0) hr.attributes = r.bytes(r.lenenc())
  if (capabilities & CLIENT_ZSTD_COMPRESSION && r.remaining > 0) hr.zstdLevel = r.int1()
  return hr
}

export function encodeHandshakeResponse(hr: HandshakeResponse): Buffer {
  const caps = hr.capabilities >>> 0
  const head = Buffer.alloc(32)
  head.writeUInt32LE(caps, 0)
  head.writeUInt32LE(hr.maxPacketSize >>> 0, 4)
  head[8] = hr.collation
  if (!(caps & CLIENT_LONG_PASSWORD)) head.writeUInt32LE(hr.extendedCapabilities >>> 0, 28)
  const parts: Buffer[] = [head, hr.userBytes, Buffer.from([0])]
  if (caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) parts.push(encodeLenenc(hr.authResponse.length), hr.authResponse)
  else if (caps & CLIENT_SECURE_CONNECTION) {
    if (hr.authResponse.length > 255) throw new RangeError('auth response too long without lenenc support')
    parts.push(Buffer.from([hr.authResponse.length]), hr.authResponse)
  } else parts.push(hr.authResponse, Buffer.from([0]))
  if (caps & CLIENT_CONNECT_WITH_DB) parts.push(hr.databaseBytes ?? Buffer.alloc(0), Buffer.from([0]))
  if (caps & CLIENT_PLUGIN_AUTH) parts.push(Buffer.from(hr.authPluginName ?? '', 'latin1'), Buffer.from([0]))
  if (caps & CLIENT_CONNECT_ATTRS) {
    const attrs = hr.attributes ?? Buffer.alloc(0)
    parts.push(encodeLenenc(attrs.length), attrs)
  }
  if (caps & CLIENT_ZSTD_COMPRESSION) parts.push(Buffer.from([hr.zstdLevel ?? 3]))
  return Buffer.concat(parts)
}

/** The 32-byte SSLRequest matching a HandshakeResponse (what the gateway sends a TLS backend first). */
export function sslRequestFor(handshakeResponse: Buffer): Buffer {
  return withClientSsl(handshakeResponse.subarray(0, SSL_REQUEST_LENGTH), true)
}
