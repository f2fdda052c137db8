/**
 * Raw-socket tools for engine tests where drivers hide the bytes: a MySQL client that reads exact frames (and
 * can switch the same socket to TLS), and a raw backend that greets like a server and records every byte it
 * receives. Packet layouts are built with ./packets.ts, never with src/protocol, so a codec bug cannot agree
 * with itself. Loopback only; every wait is bounded.
 */
import { createHash, randomBytes } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import { Duplex } from 'node:stream'
import { bytes, frame, int1, int2, int4, lenencStr, nul, zeros } from './packets.js'

export const CAP = {
  LONG_PASSWORD: 0x1,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC: 0x200000,
} as const

/** What a modern client announces (no compression, no DEPRECATE_EOF so result sets end with EOF). */
export const CLIENT_CAPS =
  CAP.LONG_PASSWORD | CAP.LONG_FLAG | CAP.PROTOCOL_41 | CAP.TRANSACTIONS | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.PLUGIN_AUTH_LENENC

export interface RawPacket {
  seq: number
  payload: Buffer
}

const sha1 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha1')
  for (const p of parts) h.update(p)
  return h.digest()
}

/** mysql_native_password: SHA1(pw) XOR SHA1(scramble || SHA1(SHA1(pw))); empty password -> empty token. */
export function nativeToken(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0)
  const p1 = sha1(Buffer.from(password, 'utf8'))
  const p3 = sha1(scramble, sha1(p1))
  return Buffer.from(p1.map((b, i) => b ^ p3[i]!))
}

/** The 20-byte scramble of a HandshakeV10 payload (part 1 + the first 12 bytes of part 2). */
export function greetingScramble(p: Buffer): Buffer {
  if (p[0] !== 0x0a) throw new Error(`not a HandshakeV10 greeting (first byte 0x${p[0]?.toString(16)})`)
  const v = p.indexOf(0, 1)
  return Buffer.concat([p.subarray(v + 5, v + 13), p.subarray(v + 32, v + 44)])
}

/** Server capabilities of a HandshakeV10 payload. */
export function greetingCaps(p: Buffer): number {
  const v = p.indexOf(0, 1)
  return (p.readUInt16LE(v + 14) | (p.readUInt16LE(v + 19) << 16)) >>> 0
}

/** Decodes an ERR payload; sqlState is undefined for the pre-4.1 layout without '#'. */
export function decodeErr(p: Buffer): { code: number; sqlState?: string; message: string } {
  if (p[0] !== 0xff) throw new Error(`not an ERR packet: ${p.subarray(0, 16).toString('hex')}`)
  const code = p.readUInt16LE(1)
  if (p[3] === 0x23) return { code, sqlState: p.toString('latin1', 4, 9), message: p.toString('utf8', 9) }
  return { code, message: p.toString('utf8', 3) }
}

/** The 32-byte SSLRequest payload. */
export function sslRequest(caps = CLIENT_CAPS | CAP.SSL): Buffer {
  return bytes(int4(caps), int4(16 * 1024 * 1024), int1(45), zeros(23))
}

export interface ResponseFields {
  caps?: number
  user: string
  auth: Buffer
  database?: string
  plugin?: string
  /** Connection attributes, encoded as lenenc key/value pairs after a lenenc total. */
  attrs?: Array<[string, string]>
}

/** HandshakeResponse41 (auth data lenenc; set CAP.SSL yourself when it goes inside TLS). */
export function handshakeResponse(f: ResponseFields): Buffer {
  let caps = f.caps ?? CLIENT_CAPS
  if (f.database !== undefined) caps |= CAP.CONNECT_WITH_DB
  if (f.attrs) caps |= CAP.CONNECT_ATTRS
  const parts = [int4(caps), int4(16 * 1024 * 1024), int1(45), zeros(23), nul(Buffer.from(f.user, 'utf8')), lenencStr(f.auth)]
  if (f.database !== undefined) parts.push(nul(Buffer.from(f.database, 'utf8')))
  parts.push(nul(f.plugin ?? 'mysql_native_password'))
  if (f.attrs) parts.push(lenencStr(Buffer.concat(f.attrs.flatMap(([k, v]) => [lenencStr(k), lenencStr(v)]))))
  return Buffer.concat(parts)
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A client socket that reads whole frames, can write in arbitrary pieces and can move to TLS. */
export class RawClient {
  /** Everything received (decrypted once on TLS), in order. */
  received = Buffer.alloc(0)
  socket: net.Socket
  closed = false
  private buf = Buffer.alloc(0)
  private wake: (() => void) | null = null
  private readonly onData = (d: Buffer): void => {
    this.received = Buffer.concat([this.received, d])
    this.buf = Buffer.concat([this.buf, d])
    this.poke()
  }
  private readonly onEnd = (): void => {
    this.closed = true
    this.poke()
  }

  private constructor(readonly raw: net.Socket) {
    this.socket = raw
    this.listen(raw)
    raw.on('error', this.onEnd)
  }

  static connect(port: number, timeoutMs = 5000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port, noDelay: true })
      const timer = setTimeout(() => (sock.destroy(), reject(new Error('raw connect timed out'))), timeoutMs)
      sock.once('connect', () => (clearTimeout(timer), resolve(new RawClient(sock))))
      sock.once('error', (e) => (clearTimeout(timer), reject(e)))
    })
  }

  private listen(s: net.Socket | Duplex): void {
    s.on('data', this.onData)
    s.on('end', this.onEnd)
    s.on('close', this.onEnd)
  }

  private poke(): void {
    const w = this.wake
    this.wake = null
    w?.()
  }

  private async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!cond()) {
      const left = deadline - Date.now()
      if (left <= 0) return false
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.wake = () => (clearTimeout(t), resolve())
      })
    }
    return true
  }

  /** The next frame; rejects on close or timeout (tests never need continuation frames here). */
  async packet(timeoutMs = 5000): Promise<RawPacket> {
    const whole = (): boolean => this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUIntLE(0, 3)
    if (!(await this.until(() => whole() || this.closed, timeoutMs))) throw new Error(`no packet within ${timeoutMs} ms`)
    if (!whole()) throw new Error(`connection closed before a whole packet (have ${this.buf.toString('hex')})`)
    const len = this.buf.readUIntLE(0, 3)
    const pkt = { seq: this.buf[3]!, payload: Buffer.from(this.buf.subarray(4, 4 + len)) }
    this.buf = this.buf.subarray(4 + len)
    return pkt
  }

  /** True once the peer closed (false if it is still open after timeoutMs). */
  closedWithin(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.closed, timeoutMs)
  }

  send(seq: number, payload: Buffer): void {
    this.socket.write(frame(seq, payload))
  }

  /** Writes `data` in pieces of `size` bytes, `gapMs` apart, so each piece is its own segment / TLS record. */
  async writeSlowly(data: Buffer, size: number, gapMs = 3): Promise<void> {
    for (let i = 0; i < data.length; i += size) {
      this.socket.write(data.subarray(i, i + size))
      await delay(gapMs)
    }
  }

  /**
   * TLS on the same TCP connection. With `prefix`, those bytes (the SSLRequest frame) are sent in the SAME
   * write as the ClientHello, so both reach the server in one segment.
   */
  async startTls(opts: { prefix?: Buffer; timeoutMs?: number; servername?: string } = {}): Promise<tls.TLSSocket> {
    this.raw.off('data', this.onData)
    this.raw.off('end', this.onEnd)
    this.raw.off('close', this.onEnd)
    let carrier: net.Socket | Duplex = this.raw
    if (opts.prefix) {
      let prefix: Buffer | undefined = opts.prefix
      const raw = this.raw
      const duplex = new Duplex({
        read() {},
        write(chunk: Buffer, _enc, cb) {
          raw.write(prefix ? Buffer.concat([prefix, chunk]) : chunk, cb)
          prefix = undefined
        },
        final(cb) {
          raw.end(cb)
        },
        destroy(err, cb) {
          raw.destroy()
          cb(err)
        },
      })
      raw.on('data', (d: Buffer) => duplex.push(d))
      raw.on('end', () => duplex.push(null))
      raw.on('close', () => duplex.destroy())
      carrier = duplex
    }
    const secure = tls.connect({ socket: carrier as net.Socket, rejectUnauthorized: false, servername: opts.servername })
    secure.on('error', this.onEnd)
    const timeoutMs = opts.timeoutMs ?? 5000
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`TLS handshake not done in ${timeoutMs} ms`)), timeoutMs)
      secure.once('secureConnect', () => (clearTimeout(timer), resolve()))
      secure.once('error', (e) => (clearTimeout(timer), reject(e)))
      secure.once('close', () => (clearTimeout(timer), reject(new Error('closed during the TLS handshake'))))
    })
    this.socket = secure
    this.listen(secure)
    return secure
  }

  destroy(): void {
    this.socket.destroy()
    this.raw.destroy()
  }
}

/** Native login on a raw connection: greeting, SSLRequest + TLS, HandshakeResponse; returns the final packet. */
export async function rawNativeLogin(
  port: number,
  user: string,
  password: string,
  opts: { tls?: boolean } = {}
): Promise<{ client: RawClient; final: RawPacket; greeting: RawPacket }> {
  const client = await RawClient.connect(port)
  const greeting = await client.packet()
  const scramble = greetingScramble(greeting.payload)
  let seq = 1
  let caps = CLIENT_CAPS
  if (opts.tls ?? true) {
    client.send(seq++, sslRequest())
    await client.startTls()
    caps |= CAP.SSL
  }
  client.send(seq, handshakeResponse({ caps, user, auth: nativeToken(password, scramble) }))
  return { client, final: await client.packet(), greeting }
}

/** Runs one query on an authenticated raw connection and returns the first column of the first row. */
export async function rawQueryScalar(client: RawClient, sql: string): Promise<string | null> {
  client.send(0, Buffer.concat([int1(0x03), Buffer.from(sql, 'utf8')]))
  const head = await client.packet()
  if (head.payload[0] === 0xff) throw new Error(`query failed: ${decodeErr(head.payload).message}`)
  const columns = head.payload[0]!
  for (let i = 0; i < columns; i++) await client.packet() // column definitions
  await client.packet() // EOF (the raw client never sets DEPRECATE_EOF)
  const row = (await client.packet()).payload
  const eof = (await client.packet()).payload
  if (eof[0] !== 0xfe) throw new Error(`rawQueryScalar expects one row, then EOF; got ${eof.subarray(0, 8).toString('hex')}`)
  if (row[0] === 0xfb) return null
  const len = row[0]!
  if (len >= 0xfb) throw new Error('rawQueryScalar reads short values only')
  return row.toString('utf8', 1, 1 + len)
}

export interface RawBackendOptions {
  /** 'normal' (a MariaDB-like greeting), 'none' (accept and say nothing), or a raw payload to send at seq 0. */
  greeting?: 'normal' | 'none' | Buffer
  /** Close the connection right after the greeting, or after the first whole packet from the gateway. */
  closeAfter?: 'greeting' | 'first-packet'
}

export interface RawBackendConn {
  socket: net.Socket
  received: Buffer
  closed: boolean
}

export interface RawBackend {
  port: number
  conns: RawBackendConn[]
  /** The greeting payload sent (for 'normal'), so tests can compare. */
  greetingPayload(): Buffer
  close(): Promise<void>
}

/** A MariaDB-10.11-like greeting: PROTOCOL_41 etc., no CLIENT_SSL, native plugin, random scramble. */
export function fakeGreeting(threadId = 77): Buffer {
  const scramble = Buffer.from(randomBytes(20).map((b) => (b % 127) + 1))
  const caps = 0xf7fe | (0x81bf << 16) // what 10.11 announces, with CLIENT_SSL clear
  return bytes(
    int1(0x0a),
    nul('5.5.5-10.11.99-MariaDB-raw'),
    int4(threadId),
    scramble.subarray(0, 8),
    int1(0),
    int2(caps & 0xffff),
    int1(45),
    int2(0x0002),
    int2(caps >>> 16),
    int1(21),
    zeros(6),
    int4(0),
    scramble.subarray(8),
    int1(0),
    nul('mysql_native_password')
  )
}

/** A raw backend: greets as configured and records what it receives; it never authenticates anyone. */
export async function startRawBackend(opts: RawBackendOptions = {}): Promise<RawBackend> {
  const conns: RawBackendConn[] = []
  const greetingPayload = opts.greeting instanceof Buffer ? opts.greeting : fakeGreeting()
  const server = net.createServer((socket) => {
    const conn: RawBackendConn = { socket, received: Buffer.alloc(0), closed: false }
    conns.push(conn)
    socket.on('error', () => {})
    socket.on('close', () => (conn.closed = true))
    socket.on('data', (d: Buffer) => {
      conn.received = Buffer.concat([conn.received, d])
      if (opts.closeAfter === 'first-packet' && conn.received.length >= 4 && conn.received.length >= 4 + conn.received.readUIntLE(0, 3)) {
        socket.destroy()
      }
    })
    if (opts.greeting === 'none') return
    socket.write(frame(0, greetingPayload))
    if (opts.closeAfter === 'greeting') socket.end()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    greetingPayload: () => greetingPayload,
    async close() {
      for (const c of conns) c.socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
