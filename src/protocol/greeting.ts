/**
 * Protocol::HandshakeV10, the server's first packet (MySQL dev docs; MariaDB "connection" page).
 *
 *   0        protocol version (0x0A)
 *   1..v     server version, NUL-terminated (v = index of the NUL)
 *   v+1  4   connection id
 *   v+5  8   scramble part 1
 *   v+13 1   filler 0x00
 *   v+14 2   capabilities, low 16 bits
 *   v+16 1   collation
 *   v+17 2   status flags
 *   v+19 2   capabilities, high 16 bits
 *   v+21 1   auth data length (if PLUGIN_AUTH)
 *   v+22 6   zeros
 *   v+28 4   MariaDB extended capabilities (only when CLIENT_LONG_PASSWORD/CLIENT_MYSQL is clear), else zeros
 *   v+32 ..  scramble part 2 (max(13, len-8) bytes, last one NUL), then auth plugin name NUL-terminated
 */
import { BufferReader, MalformedPacketError } from './buffer-reader.js'
import {
  CLIENT_LONG_PASSWORD,
  CLIENT_PLUGIN_AUTH,
  CLIENT_PROTOCOL_41,
  CLIENT_SECURE_CONNECTION,
  CLIENT_SSL,
} from './constants.js'

export interface Greeting {
  protocolVersion: number
  serverVersion: string
  connectionId: number
  /** Both capability words as one unsigned 32-bit number. */
  capabilities: number
  collation: number
  status: number
  /** MariaDB extended capabilities (bits 32-63), 0 for MySQL. */
  extendedCapabilities: number
  /** The 20-byte nonce clients hash with (parts 1 and 2, trailing NUL removed). */
  scramble: Buffer
  authPluginName: string
}

export function parseGreeting(payload: Buffer): Greeting {
  const r = new BufferReader(payload)
  const protocolVersion = r.int1()
  if (protocolVersion !== 10) throw new MalformedPacketError(`unsupported protocol version ${protocolVersion}`)
  const serverVersion = r.nulBytes().toString('latin1')
  const connectionId = r.int4()
  const part1 = r.bytes(8)
  r.int1()
  const capsLow = r.int2()
  if (r.remaining === 0) {
    return {
      protocolVersion,
      serverVersion,
      connectionId,
      capabilities: capsLow,
      collation: 0,
      status: 0,
      extendedCapabilities: 0,
      scramble: Buffer.from(part1),
      authPluginName: '',
    }
  }
  const collation = r.int1()
  const status = r.int2()
  const capabilities = (capsLow | (r.int2() << 16)) >>> 0
  const authDataLength = r.int1()
  r.bytes(6)
  const ext = r.int4()
  const extendedCapabilities = capabilities & CLIENT_LONG_PASSWORD ? 0 : ext
  let scramble = Buffer.from(part1)
  if (capabilities & CLIENT_SECURE_CONNECTION) {
    const part2Length = Math.max(13, authDataLength - 8)
    const part2 = r.bytes(Math.min(part2Length, r.remaining))
    // The last byte of part 2 is a NUL terminator that is not part of the nonce.
    const nonce2 = part2[part2.length - 1] === 0 ? part2.subarray(0, part2.length - 1) : part2
    scramble = Buffer.concat([part1, nonce2])
  }
  let authPluginName = ''
  if (capabilities & CLIENT_PLUGIN_AUTH && r.remaining > 0) {
    const rest = r.rest()
    const nul = rest.indexOf(0)
    authPluginName = (nul === -1 ? rest : rest.subarray(0, nul)).toString('latin1')
  }
  return {
    protocolVersion,
    serverVersion,
    connectionId,
    capabilities,
    collation,
    status,
    extendedCapabilities,
    scramble,
    authPluginName,
  }
}

/** Offset of the low capability word, found without trusting anything after the version string. */
function capsLowOffset(payload: Buffer): number {
  const v = payload.indexOf(0, 1)
  if (payload[0] !== 10 || v === -1 || v + 16 > payload.length) throw new MalformedPacketError('not a HandshakeV10')
  return v + 14
}

/**
 * A copy of the greeting with only CLIENT_SSL changed. Everything else (scramble, version, thread id, other
 * capabilities) must reach the client byte for byte: the client hashes with that scramble and Ctrl-C in the
 * CLI sends KILL QUERY <thread id> on a second connection.
 */
export function greetingWithSsl(payload: Buffer, ssl: boolean): Buffer {
  const offset = capsLowOffset(payload)
  const out = Buffer.from(payload)
  const low = out.readUInt16LE(offset)
  out.writeUInt16LE(ssl ? low | CLIENT_SSL : low & ~CLIENT_SSL & 0xffff, offset)
  return out
}

/** Same, but also clears capability bits (e.g. compression when the gateway must parse the command phase). */
export function greetingWithCapabilities(payload: Buffer, set: number, clear: number): Buffer {
  const offset = capsLowOffset(payload)
  const out = Buffer.from(payload)
  const low = out.readUInt16LE(offset)
  out.writeUInt16LE(((low | (set & 0xffff)) & ~(clear & 0xffff)) & 0xffff, offset)
  if (offset + 7 <= out.length) {
    const highOffset = offset + 5
    const high = out.readUInt16LE(highOffset)
    out.writeUInt16LE(((high | (set >>> 16)) & ~(clear >>> 16)) & 0xffff, highOffset)
  }
  return out
}

export interface GatewayGreetingOptions {
  serverVersion: string
  capabilities: number
  collation: number
  /** 20 bytes in 1..127 (no NUL, as clients treat the scramble as a C string in places). */
  scramble: Buffer
  authPluginName: string
}

/** Builds the greeting the gateway sends itself before it knows the tenant (SNI routing). Thread id 0. */
export function encodeGatewayGreeting(o: GatewayGreetingOptions): Buffer {
  if (o.scramble.length !== 20) throw new RangeError('scramble must be 20 bytes')
  const version = Buffer.from(o.serverVersion, 'latin1')
  const plugin = Buffer.from(o.authPluginName, 'latin1')
  const caps = (o.capabilities | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH) >>> 0
  const out = Buffer.alloc(1 + version.length + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10 + 13 + plugin.length + 1)
  let p = 0
  out[p++] = 10
  p += version.copy(out, p)
  out[p++] = 0
  out.writeUInt32LE(0, p)
  p += 4
  p += o.scramble.copy(out, p, 0, 8)
  out[p++] = 0
  out.writeUInt16LE(caps & 0xffff, p)
  p += 2
  out[p++] = o.collation
  out.writeUInt16LE(0x0002, p) // SERVER_STATUS_AUTOCOMMIT
  p += 2
  out.writeUInt16LE(caps >>> 16, p)
  p += 2
  out[p++] = 21
  p += 10 // reserved zeros (no MariaDB extended capabilities: CLIENT_LONG_PASSWORD is set)
  p += o.scramble.copy(out, p, 8, 20)
  out[p++] = 0
  p += plugin.copy(out, p)
  out[p++] = 0
  return out
}
