/**
 * Wire layer of the fake MySQL 8 server (test/fakes/mysql8-server.ts): packet framing with strict
 * sequence ids, length-encoded values and the OK/ERR/EOF encoders.
 *
 * Written from the MySQL dev docs (Protocol::Packet, Protocol::LengthEncodedInteger, OK_Packet,
 * ERR_Packet, EOF_Packet) and NOT from src/protocol: if the gateway's codec and this fake shared a
 * bug, tests driving one with the other could never see it.
 */
import type { Duplex } from 'node:stream'

/** Capability bits (docs "Capabilities Flags"); all below 2^31, so plain `&` is safe. */
export const CAP = {
  LONG_PASSWORD: 1 << 0,
  FOUND_ROWS: 1 << 1,
  LONG_FLAG: 1 << 2,
  CONNECT_WITH_DB: 1 << 3,
  NO_SCHEMA: 1 << 4,
  COMPRESS: 1 << 5,
  ODBC: 1 << 6,
  LOCAL_FILES: 1 << 7,
  IGNORE_SPACE: 1 << 8,
  PROTOCOL_41: 1 << 9,
  INTERACTIVE: 1 << 10,
  SSL: 1 << 11,
  IGNORE_SIGPIPE: 1 << 12,
  TRANSACTIONS: 1 << 13,
  RESERVED: 1 << 14,
  SECURE_CONNECTION: 1 << 15,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  CONNECT_ATTRS: 1 << 20,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 1 << 21,
  CAN_HANDLE_EXPIRED_PASSWORDS: 1 << 22,
  SESSION_TRACK: 1 << 23,
  DEPRECATE_EOF: 1 << 24,
  QUERY_ATTRIBUTES: 1 << 27,
} as const

export const SERVER_STATUS_AUTOCOMMIT = 0x0002

/** Largest frame payload; a frame this long means "continued in the next frame". */
const MAX_FRAME = 0xffffff

export type ReadFailure = 'closed' | 'timeout' | 'out-of-order' | 'too-large'

export class PacketReadError extends Error {
  constructor(
    readonly reason: ReadFailure,
    message: string,
    /** For 'out-of-order': the sequence id the peer actually used. */
    readonly gotSeq?: number,
  ) {
    super(message)
    this.name = 'PacketReadError'
  }
}

/** Thrown by Reader when a packet ends before a field it must contain. */
export class MalformedPacketError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MalformedPacketError'
  }
}

/**
 * One leg's packet stream. Sequence ids are one counter shared by both directions (greeting 0,
 * client 1, ...); a received frame must carry exactly the expected id, like libmysqlclient's
 * "packets out of order" check, because catching a gateway renumbering bug is half of this fake's job.
 */
export class PacketChannel {
  private buf: Buffer = Buffer.alloc(0)
  private nextSeq = 0
  private ended = false
  private wake: (() => void) | null = null
  private sock: Duplex

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    this.poke()
  }

  private readonly onEnd = (): void => {
    this.ended = true
    this.poke()
  }

  constructor(
    sock: Duplex,
    private readonly maxMessageBytes: number,
  ) {
    this.sock = sock
    this.attach(sock)
  }

  get socket(): Duplex {
    return this.sock
  }

  /** The id the next frame (either direction) must carry. */
  get seq(): number {
    return this.nextSeq
  }

  /** Every command starts a new sequence at 0. */
  resetSeq(): void {
    this.nextSeq = 0
  }

  /** For answering an out-of-order packet with the id its sender expects next. */
  setSeq(n: number): void {
    this.nextSeq = n & 0xff
  }

  attach(sock: Duplex): void {
    this.sock = sock
    this.ended = false
    sock.on('data', this.onData)
    sock.on('end', this.onEnd)
    sock.on('close', this.onEnd)
    sock.on('error', this.onEnd)
  }

  /**
   * Stops reading from the current socket and hands back bytes already buffered (for the TLS
   * upgrade: the ClientHello may share a read with the SSLRequest and must be unshifted, or the
   * TLS handshake hangs).
   */
  detach(): Buffer {
    const s = this.sock
    s.removeListener('data', this.onData)
    s.removeListener('end', this.onEnd)
    s.removeListener('close', this.onEnd)
    s.removeListener('error', this.onEnd)
    s.pause()
    const rest = this.buf
    this.buf = Buffer.alloc(0)
    return rest
  }

  /** Next complete message (continuation frames joined), waiting at most timeoutMs. */
  async read(timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const msg = this.tryParse()
      if (msg) return msg
      if (this.ended) throw new PacketReadError('closed', 'peer closed the connection')
      const left = deadline - Date.now()
      if (left <= 0) throw new PacketReadError('timeout', `no complete packet within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.wake = () => {
          clearTimeout(t)
          resolve()
        }
      })
      this.wake = null
    }
  }

  /** Frames one message with the next sequence id(s); does not write. */
  frame(payload: Buffer): Buffer {
    const frames: Buffer[] = []
    let off = 0
    for (;;) {
      const len = Math.min(MAX_FRAME, payload.length - off)
      const header = Buffer.alloc(4)
      header.writeUIntLE(len, 0, 3)
      header[3] = this.nextSeq
      this.nextSeq = (this.nextSeq + 1) & 0xff
      frames.push(header, payload.subarray(off, off + len))
      off += len
      // A message whose length is a multiple of MAX_FRAME ends with an empty frame.
      if (len < MAX_FRAME) break
    }
    return Buffer.concat(frames)
  }

  /** Frames and writes several messages in ONE socket write (so they can share a client read). */
  send(...payloads: Buffer[]): void {
    this.sock.write(Buffer.concat(payloads.map((p) => this.frame(p))))
  }

  /** Writes already-framed bytes. */
  writeRaw(bytes: Buffer): void {
    this.sock.write(bytes)
  }

  private poke(): void {
    const w = this.wake
    this.wake = null
    w?.()
  }

  private tryParse(): Buffer | null {
    let off = 0
    let frames = 0
    let total = 0
    const parts: Buffer[] = []
    for (;;) {
      if (this.buf.length < off + 4) return null
      const len = this.buf.readUIntLE(off, 3)
      const seq = this.buf[off + 3]
      const want = (this.nextSeq + frames) & 0xff
      if (seq !== want) {
        throw new PacketReadError('out-of-order', `expected sequence id ${want}, got ${seq}`, seq)
      }
      total += len
      if (total > this.maxMessageBytes) {
        throw new PacketReadError('too-large', `message exceeds ${this.maxMessageBytes} bytes`)
      }
      if (this.buf.length < off + 4 + len) return null
      parts.push(this.buf.subarray(off + 4, off + 4 + len))
      off += 4 + len
      frames++
      if (len < MAX_FRAME) break
    }
    this.buf = this.buf.subarray(off)
    this.nextSeq = (this.nextSeq + frames) & 0xff
    return Buffer.from(Buffer.concat(parts))
  }
}

/** Bounds-checked cursor over one message payload. */
export class Reader {
  off = 0
  constructor(readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.off
  }

  private need(n: number, what: string): void {
    if (this.off + n > this.buf.length) throw new MalformedPacketError(`packet ends inside ${what}`)
  }

  u8(): number {
    this.need(1, 'int<1>')
    return this.buf[this.off++]
  }

  u16(): number {
    this.need(2, 'int<2>')
    const v = this.buf.readUInt16LE(this.off)
    this.off += 2
    return v
  }

  u32(): number {
    this.need(4, 'int<4>')
    const v = this.buf.readUInt32LE(this.off)
    this.off += 4
    return v
  }

  bytes(n: number): Buffer {
    this.need(n, `${n} bytes`)
    const v = this.buf.subarray(this.off, this.off + n)
    this.off += n
    return v
  }

  rest(): Buffer {
    const v = this.buf.subarray(this.off)
    this.off = this.buf.length
    return v
  }

  /** NUL-terminated string; a missing NUL is malformed. */
  nulStr(): string {
    const end = this.buf.indexOf(0, this.off)
    if (end < 0) throw new MalformedPacketError('unterminated string')
    const v = this.buf.toString('utf8', this.off, end)
    this.off = end + 1
    return v
  }

  lenencInt(): number {
    const first = this.u8()
    if (first < 0xfb) return first
    if (first === 0xfc) return this.u16()
    if (first === 0xfd) {
      this.need(3, 'int<3>')
      const v = this.buf.readUIntLE(this.off, 3)
      this.off += 3
      return v
    }
    if (first === 0xfe) {
      this.need(8, 'int<8>')
      const v = this.buf.readBigUInt64LE(this.off)
      this.off += 8
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new MalformedPacketError('length too large')
      return Number(v)
    }
    throw new MalformedPacketError(`invalid length-encoded integer prefix 0x${first.toString(16)}`)
  }

  lenencBytes(): Buffer {
    return this.bytes(this.lenencInt())
  }
}

export function lenencInt(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n])
  if (n < 0x10000) {
    const b = Buffer.alloc(3)
    b[0] = 0xfc
    b.writeUInt16LE(n, 1)
    return b
  }
  if (n < 0x1000000) {
    const b = Buffer.alloc(4)
    b[0] = 0xfd
    b.writeUIntLE(n, 1, 3)
    return b
  }
  const b = Buffer.alloc(9)
  b[0] = 0xfe
  b.writeBigUInt64LE(BigInt(n), 1)
  return b
}

export function lenencStr(v: string | Buffer): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v
  return Buffer.concat([lenencInt(b.length), b])
}

export function nulStr(v: string): Buffer {
  return Buffer.concat([Buffer.from(v, 'utf8'), Buffer.from([0])])
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16LE(n)
  return b
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}

/**
 * OK_Packet. With CLIENT_SESSION_TRACK MySQL's net_send_ok writes the info string only when it is
 * non-empty (or state changed), so an empty info is omitted in both modes; `header` 0xFE is the
 * DEPRECATE_EOF end-of-resultset form.
 */
export function okPacket(opts: { status?: number; affectedRows?: number; insertId?: number; header?: 0x00 | 0xfe } = {}): Buffer {
  return Buffer.concat([
    Buffer.from([opts.header ?? 0x00]),
    lenencInt(opts.affectedRows ?? 0),
    lenencInt(opts.insertId ?? 0),
    u16(opts.status ?? SERVER_STATUS_AUTOCOMMIT),
    u16(0), // warnings
  ])
}

/** ERR_Packet in its 4.1 form: `#` marker + 5-char SQLSTATE. */
export function errPacket(code: number, sqlState: string, message: string): Buffer {
  return Buffer.concat([Buffer.from([0xff]), u16(code), Buffer.from(`#${sqlState}`, 'ascii'), Buffer.from(message, 'utf8')])
}

/** EOF_Packet: 0xFE, warnings, status (in that order). */
export function eofPacket(status = SERVER_STATUS_AUTOCOMMIT): Buffer {
  return Buffer.concat([Buffer.from([0xfe]), u16(0), u16(status)])
}
