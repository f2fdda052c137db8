/**
 * A deliberately small MySQL client for the benchmark: connection phase (optionally with the SSLRequest
 * and a TLS upgrade, offering a saved TLS session), mysql_native_password (also after an auth switch),
 * COM_QUERY whose result is framed but not decoded (bytes and rows are counted, large packets are skipped
 * without copying), and COM_QUIT.
 *
 * Why not mysql2: the load generator shares the two cores with the server and the gateway, so it must
 * spend as little CPU as possible per connection and per MiB; decoding a 1 MiB string per row or running
 * a driver's connection machinery would measure the client instead of the target.
 */
import { createHash } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'

// Capability flags (https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html)
const CLIENT_LONG_PASSWORD = 0x1
const CLIENT_CONNECT_WITH_DB = 0x8
const CLIENT_PROTOCOL_41 = 0x200
const CLIENT_SSL = 0x800
const CLIENT_TRANSACTIONS = 0x2000
const CLIENT_SECURE_CONNECTION = 0x8000
const CLIENT_PLUGIN_AUTH = 0x80000

const UTF8MB4_GENERAL_CI = 45
const MAX_PACKET = 0x1000000
/** Packets up to this size are buffered whole; larger ones (result rows) are only counted. */
const KEEP_PAYLOAD_MAX = 64 * 1024

export interface Endpoint {
  host: string
  port: number
  user: string
  password: string
  database?: string
  /** Upgrade to TLS after the greeting (SSLRequest); the server certificate is verified against `ca`. */
  tls?: { ca: string | Buffer; servername: string }
}

export interface ConnectOptions {
  /** A TLS session (from a previous connection's `session` event) to offer for resumption. */
  session?: Buffer
  /** Called with every TLS session the server issues on this connection. */
  onSession?: (session: Buffer) => void
  timeoutMs: number
}

export interface QueryResult {
  rows: number
  /** Payload bytes of the whole result (column definitions, rows, terminators). */
  bytes: number
}

interface Packet {
  seq: number
  length: number
  /** Whole payload when length <= KEEP_PAYLOAD_MAX, else undefined. */
  payload: Buffer | undefined
  first: number
}

type Waiter = { resolve: (p: Packet) => void; reject: (e: Error) => void }

export class MysqlError extends Error {
  constructor(
    message: string,
    readonly errno?: number
  ) {
    super(message)
  }
}

/**
 * Incremental MySQL packet framer: never concatenates the stream, copies only payloads it keeps and
 * delivers packets in order to either a waiter or a sink (result streaming).
 */
class Framer {
  #header = Buffer.alloc(4)
  #headerFill = 0
  #remaining = -1
  #length = 0
  #seq = 0
  #first = -1
  #parts: Buffer[] = []
  #queue: Packet[] = []
  #waiters: Waiter[] = []
  #failed: Error | undefined
  sink: ((p: Packet) => void) | undefined

  push(chunk: Buffer): void {
    let off = 0
    const n = chunk.length
    while (off < n) {
      if (this.#remaining < 0) {
        const take = Math.min(4 - this.#headerFill, n - off)
        chunk.copy(this.#header, this.#headerFill, off, off + take)
        this.#headerFill += take
        off += take
        if (this.#headerFill < 4) return
        this.#headerFill = 0
        this.#length = this.#header[0] | (this.#header[1] << 8) | (this.#header[2] << 16)
        this.#seq = this.#header[3]
        this.#remaining = this.#length
        this.#first = -1
        this.#parts = []
        if (this.#length === 0) {
          this.#emit()
          continue
        }
      }
      const take = Math.min(this.#remaining, n - off)
      if (this.#first < 0) this.#first = chunk[off]
      if (this.#length <= KEEP_PAYLOAD_MAX) this.#parts.push(chunk.subarray(off, off + take))
      off += take
      this.#remaining -= take
      if (this.#remaining === 0) this.#emit()
    }
  }

  #emit(): void {
    const keep = this.#length <= KEEP_PAYLOAD_MAX
    const payload = keep ? (this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts)) : undefined
    const packet: Packet = { seq: this.#seq, length: this.#length, payload, first: this.#first }
    this.#remaining = -1
    this.#parts = []
    if (this.sink) return this.sink(packet)
    const w = this.#waiters.shift()
    if (w) w.resolve(packet)
    else this.#queue.push(packet)
  }

  next(): Promise<Packet> {
    const p = this.#queue.shift()
    if (p) return Promise.resolve(p)
    if (this.#failed) return Promise.reject(this.#failed)
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  fail(err: Error): void {
    this.#failed ??= err
    for (const w of this.#waiters.splice(0)) w.reject(this.#failed)
  }
}

function header(length: number, seq: number): Buffer {
  const h = Buffer.allocUnsafe(4)
  h[0] = length & 0xff
  h[1] = (length >> 8) & 0xff
  h[2] = (length >> 16) & 0xff
  h[3] = seq & 0xff
  return h
}

function frame(payload: Buffer, seq: number): Buffer {
  return Buffer.concat([header(payload.length, seq), payload])
}

function errOf(p: Packet): MysqlError {
  const b = p.payload!
  const errno = b.readUInt16LE(1)
  const msg = b.subarray(b[3] === 0x23 ? 9 : 3).toString('utf8')
  return new MysqlError(`ERR ${errno}: ${msg}`, errno)
}

/** mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))). */
function nativeToken(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0)
  const s1 = createHash('sha1').update(password).digest()
  const s2 = createHash('sha1').update(s1).digest()
  const s3 = createHash('sha1').update(scramble).update(s2).digest()
  for (let i = 0; i < s3.length; i++) s3[i] ^= s1[i]
  return s3
}

function cstring(b: Buffer, off: number): [string, number] {
  const end = b.indexOf(0, off)
  const stop = end < 0 ? b.length : end
  return [b.toString('latin1', off, stop), stop + 1]
}

interface Greeting {
  caps: number
  scramble: Buffer
  plugin: string
}

function parseGreeting(b: Buffer): Greeting {
  if (b[0] !== 10) throw new MysqlError(`unexpected protocol version ${b[0]}`)
  let [, off] = cstring(b, 1)
  off += 4 // thread id
  const part1 = b.subarray(off, off + 8)
  off += 9 // + filler
  let caps = b.readUInt16LE(off)
  off += 2 + 1 + 2 // caps low, charset, status
  caps |= b.readUInt16LE(off) << 16
  off += 2
  const dataLen = b[off]
  off += 1 + 10
  const part2Len = Math.max(13, dataLen - 8)
  const part2 = b.subarray(off, off + part2Len - 1) // without the trailing NUL
  off += part2Len
  const [plugin] = off < b.length ? cstring(b, off) : ['mysql_native_password']
  return { caps: caps >>> 0, scramble: Buffer.concat([part1, part2]), plugin }
}

export class MiniConnection {
  readonly socket: net.Socket
  readonly framer: Framer
  /** Whether the TLS handshake resumed a session (false on plaintext). */
  readonly resumed: boolean
  readonly cipher: string | undefined
  readonly protocol: string | undefined
  #closed: Promise<void>

  constructor(socket: net.Socket, framer: Framer, closed: Promise<void>) {
    this.socket = socket
    this.framer = framer
    this.#closed = closed
    const t = socket instanceof tls.TLSSocket ? socket : undefined
    this.resumed = t?.isSessionReused() ?? false
    this.cipher = t?.getCipher()?.standardName
    this.protocol = t?.getProtocol() ?? undefined
  }

  /** COM_QUERY; the result set is framed but not decoded. */
  query(sql: string, timeoutMs: number): Promise<QueryResult> {
    const framer = this.framer
    return new Promise<QueryResult>((resolve, reject) => {
      let state: 'count' | 'columns' | 'rows' = 'count'
      let columns = 0
      let rows = 0
      let bytes = 0
      const timer = setTimeout(() => done(new Error(`query still running after ${timeoutMs} ms`)), timeoutMs)
      const onClose = () => done(new Error('connection closed during a query'))
      const done = (err?: Error) => {
        clearTimeout(timer)
        framer.sink = undefined
        this.socket.off('close', onClose)
        if (err) reject(err)
        else resolve({ rows, bytes })
      }
      this.socket.once('close', onClose)
      framer.sink = (p) => {
        bytes += p.length
        const isEof = p.first === 0xfe && p.length < 9
        if (p.first === 0xff && p.length <= KEEP_PAYLOAD_MAX) return done(errOf(p))
        if (state === 'count') {
          if (p.first === 0x00) return done() // OK: no result set
          columns = p.first // < 251 columns in anything the bench sends
          state = 'columns'
        } else if (state === 'columns') {
          if (isEof) state = 'rows'
          else if (--columns < 0) return done(new Error('protocol: too many column definitions'))
        } else if (isEof) {
          return done()
        } else {
          rows++
        }
      }
      const payload = Buffer.allocUnsafe(1 + Buffer.byteLength(sql))
      payload[0] = 0x03
      payload.write(sql, 1)
      this.socket.write(frame(payload, 0))
    })
  }

  /** COM_QUIT, then waits (bounded) for the socket to close. */
  async quit(timeoutMs: number): Promise<void> {
    if (!this.socket.destroyed) {
      this.socket.write(frame(Buffer.from([0x01]), 0))
      this.socket.end()
    }
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.#closed, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))])
    clearTimeout(timer)
    this.socket.destroy()
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** Opens, (optionally) upgrades to TLS and authenticates; rejects on any error or after `timeoutMs`. */
export async function connect(ep: Endpoint, opts: ConnectOptions): Promise<MiniConnection> {
  const raw = net.connect({ host: ep.host, port: ep.port, noDelay: true })
  let socket: net.Socket = raw
  let framer = new Framer()
  const failAll = (err: Error) => framer.fail(err)
  const onData = (c: Buffer) => framer.push(c)
  let closedResolve!: () => void
  const closed = new Promise<void>((r) => (closedResolve = r))
  raw.on('close', () => {
    closedResolve()
    framer.fail(new Error('connection closed'))
  })
  raw.on('error', failAll)
  raw.on('data', onData)
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`connect: no OK within ${opts.timeoutMs} ms`)), opts.timeoutMs)
  })
  try {
    return await Promise.race([handshake(), deadline])
  } catch (err) {
    socket.destroy()
    raw.destroy()
    throw err
  } finally {
    clearTimeout(timer)
  }

  async function handshake(): Promise<MiniConnection> {
    const first = await framer.next()
    if (first.first === 0xff) throw errOf(first)
    const g = parseGreeting(first.payload!)
    let caps =
      CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
    if (ep.database) caps |= CLIENT_CONNECT_WITH_DB
    let seq = first.seq + 1
    if (ep.tls) {
      if (!(g.caps & CLIENT_SSL)) throw new MysqlError('server does not offer TLS')
      caps |= CLIENT_SSL
      const req = Buffer.alloc(32)
      req.writeUInt32LE(caps >>> 0, 0)
      req.writeUInt32LE(MAX_PACKET, 4)
      req[8] = UTF8MB4_GENERAL_CI
      raw.write(frame(req, seq++))
      raw.off('data', onData)
      const t = tls.connect({
        socket: raw,
        ca: ep.tls.ca,
        servername: ep.tls.servername,
        session: opts.session,
      })
      socket = t
      framer = new Framer()
      t.on('data', (c: Buffer) => framer.push(c))
      t.on('error', (e) => framer.fail(e))
      t.on('close', () => framer.fail(new Error('connection closed')))
      if (opts.onSession) t.on('session', opts.onSession)
      await new Promise<void>((resolve, reject) => {
        t.once('secureConnect', resolve)
        t.once('error', reject)
      })
    }
    const user = Buffer.from(ep.user, 'utf8')
    const token = g.plugin === 'mysql_native_password' ? nativeToken(ep.password, g.scramble) : Buffer.alloc(0)
    const db = ep.database ? Buffer.from(ep.database, 'utf8') : undefined
    const fixed = Buffer.alloc(32)
    fixed.writeUInt32LE(caps >>> 0, 0)
    fixed.writeUInt32LE(MAX_PACKET, 4)
    fixed[8] = UTF8MB4_GENERAL_CI
    const parts = [fixed, user, Buffer.from([0, token.length]), token]
    if (db) parts.push(db, Buffer.from([0]))
    parts.push(Buffer.from('mysql_native_password\0', 'latin1'))
    socket.write(frame(Buffer.concat(parts), seq++))
    for (let round = 0; round < 4; round++) {
      const p = await framer.next()
      if (p.first === 0x00) return new MiniConnection(socket, framer, closed)
      if (p.first === 0xff) throw errOf(p)
      if (p.first === 0xfe && p.payload) {
        const [plugin, off] = cstring(p.payload, 1)
        if (plugin !== 'mysql_native_password') throw new MysqlError(`auth switch to unsupported plugin ${plugin}`)
        let scramble = p.payload.subarray(off)
        if (scramble.length > 0 && scramble[scramble.length - 1] === 0) scramble = scramble.subarray(0, -1)
        socket.write(frame(nativeToken(ep.password, scramble), p.seq + 1))
        continue
      }
      throw new MysqlError(`unexpected packet 0x${p.first.toString(16)} during authentication`)
    }
    throw new MysqlError('too many authentication round trips')
  }
}
