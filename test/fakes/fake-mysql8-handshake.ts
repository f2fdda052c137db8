/**
 * Connection-phase messages of the fake MySQL 8 server: the HandshakeV10 greeting, the
 * HandshakeResponse41 parser, AuthSwitchRequest and the access-denied ERR (dev docs
 * "Protocol::HandshakeV10", "Protocol::HandshakeResponse41", "Protocol::AuthSwitchRequest").
 */
import { CAP, MalformedPacketError, Reader, errPacket, nulStr, u16, u32, SERVER_STATUS_AUTOCOMMIT } from './fake-mysql8-wire.js'

/** A MySQL 8.0 server's capabilities minus the ones this fake does not implement (compression, MFA, optional metadata). */
export const BASE_CAPS =
  CAP.LONG_PASSWORD | CAP.FOUND_ROWS | CAP.LONG_FLAG | CAP.CONNECT_WITH_DB | CAP.NO_SCHEMA | CAP.ODBC |
  CAP.LOCAL_FILES | CAP.IGNORE_SPACE | CAP.PROTOCOL_41 | CAP.INTERACTIVE | CAP.IGNORE_SIGPIPE |
  CAP.TRANSACTIONS | CAP.RESERVED | CAP.SECURE_CONNECTION | CAP.MULTI_STATEMENTS | CAP.MULTI_RESULTS |
  CAP.PS_MULTI_RESULTS | CAP.PLUGIN_AUTH | CAP.CONNECT_ATTRS | CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  CAP.CAN_HANDLE_EXPIRED_PASSWORDS | CAP.SESSION_TRACK | CAP.DEPRECATE_EOF | CAP.QUERY_ATTRIBUTES

const COLLATION_UTF8MB4_0900_AI_CI = 255
const ACCESS_DENIED = 1045

export interface HandshakeResponse {
  caps: number
  user: string
  auth: Buffer
  database: string
  plugin: string
  attrs: Record<string, string>
}

/** HandshakeResponse41; fields are read per the client's own flags, since it wrote them that way. */
export function parseHandshakeResponse(p: Buffer): HandshakeResponse {
  const r = new Reader(p)
  const caps = r.u32()
  r.u32() // max packet size
  r.u8() // collation
  r.bytes(23) // filler (MariaDB extended caps live in the last 4; irrelevant to MySQL)
  const user = r.nulStr()
  let auth: Buffer
  if (caps & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) auth = r.lenencBytes()
  else if (caps & CAP.SECURE_CONNECTION) auth = r.bytes(r.u8())
  else {
    const end = p.indexOf(0, r.off)
    if (end < 0) throw new MalformedPacketError('unterminated auth response')
    auth = r.bytes(end - r.off)
    r.u8()
  }
  const database = caps & CAP.CONNECT_WITH_DB && r.remaining > 0 ? r.nulStr() : ''
  const plugin = caps & CAP.PLUGIN_AUTH && r.remaining > 0 ? r.nulStr() : ''
  const attrs: Record<string, string> = {}
  if (caps & CAP.CONNECT_ATTRS && r.remaining > 0) {
    const end = r.lenencInt() + r.off
    while (r.off < end) attrs[r.lenencBytes().toString('utf8')] = r.lenencBytes().toString('utf8')
  }
  return { caps, user, auth, database, plugin, attrs }
}

export function greeting(version: string, connId: number, scramble: Buffer, caps: number, plugin: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x0a]),
    nulStr(version),
    u32(connId),
    scramble.subarray(0, 8),
    Buffer.from([0]),
    u16(caps & 0xffff),
    Buffer.from([COLLATION_UTF8MB4_0900_AI_CI]),
    u16(SERVER_STATUS_AUTOCOMMIT),
    u16(caps >>> 16),
    Buffer.from([21]), // auth-plugin-data length: 20-byte scramble + NUL
    Buffer.alloc(10),
    scramble.subarray(8, 20),
    Buffer.from([0]),
    nulStr(plugin),
  ])
}

export const authSwitch = (plugin: string, scramble: Buffer): Buffer =>
  Buffer.concat([Buffer.from([0xfe]), nulStr(plugin), scramble, Buffer.from([0])])

export const accessDenied = (user: string, passwordUsed: boolean): Buffer =>
  errPacket(ACCESS_DENIED, '28000', `Access denied for user '${user}'@'localhost' (using password: ${passwordUsed ? 'YES' : 'NO'})`)
