/**
 * A raw-socket MySQL client for probing the fake MySQL 8 server where drivers hide the bytes:
 * how packets were split across TCP reads, exact resultset terminators, sequence-id errors.
 * Token formulas are written here from the client side (mysql2 / dev docs) instead of reusing the
 * fake's verifiers, so a wrong formula cannot agree with itself.
 */
import { createHash } from 'node:crypto'
import net from 'node:net'

export interface ProbePacket {
  seq: number
  payload: Buffer
  /** Index (in `chunks`) of the read that delivered the first / last byte of this packet's frame. */
  firstChunk: number
  lastChunk: number
}

export class MysqlProbe {
  /** Every 'data' chunk as it arrived. */
  readonly chunks: Buffer[] = []
  private readonly chunkEnds: number[] = []
  private received = 0
  private consumed = 0
  private buf = Buffer.alloc(0)
  private closed = false
  private wake: (() => void) | null = null

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d)
      this.received += d.length
      this.chunkEnds.push(this.received)
      this.buf = Buffer.concat([this.buf, d])
      this.poke()
    })
    const end = () => {
      this.closed = true
      this.poke()
    }
    sock.on('close', end)
    sock.on('error', end)
  }

  static connect(port: number, timeoutMs = 5000): Promise<MysqlProbe> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port })
      const timer = setTimeout(() => {
        sock.destroy()
        reject(new Error('probe connect timed out'))
      }, timeoutMs)
      sock.once('connect', () => {
        clearTimeout(timer)
        sock.setNoDelay(true)
        resolve(new MysqlProbe(sock))
      })
      sock.once('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
    })
  }

  /** Next single frame (tests never need continuation frames here). */
  async packet(timeoutMs = 5000): Promise<ProbePacket> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (this.buf.length >= 4) {
        const len = this.buf.readUIntLE(0, 3)
        if (this.buf.length >= 4 + len) {
          const start = this.consumed
          const end = start + 4 + len
          const pkt: ProbePacket = {
            seq: this.buf[3],
            payload: Buffer.from(this.buf.subarray(4, 4 + len)),
            firstChunk: this.chunkOf(start),
            lastChunk: this.chunkOf(end - 1),
          }
          this.buf = this.buf.subarray(4 + len)
          this.consumed = end
          return pkt
        }
      }
      if (this.closed) throw new Error('connection closed before a complete packet arrived')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no complete packet within ${timeoutMs} ms`)
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

  /** Resolves true once the server has closed the connection (false on timeout). */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    return this.closed
  }

  send(seq: number, payload: Buffer): void {
    const h = Buffer.alloc(4)
    h.writeUIntLE(payload.length, 0, 3)
    h[3] = seq
    this.sock.write(Buffer.concat([h, payload]))
  }

  close(): void {
    this.sock.destroy()
  }

  private chunkOf(offset: number): number {
    return this.chunkEnds.findIndex((e) => e > offset)
  }

  private poke(): void {
    const w = this.wake
    this.wake = null
    w?.()
  }
}

export interface Greeting {
  version: string
  connId: number
  caps: number
  collation: number
  status: number
  scramble: Buffer
  plugin: string
  /** The 10 reserved bytes, which MySQL sends as zeros. */
  reserved: Buffer
}

export function parseGreeting(p: Buffer): Greeting {
  if (p[0] !== 0x0a) throw new Error(`not a HandshakeV10 (first byte ${p[0]})`)
  const v = p.indexOf(0, 1)
  const capsLow = p.readUInt16LE(v + 14)
  const capsHigh = p.readUInt16LE(v + 19)
  const authLen = p[v + 21]
  const part2Len = Math.max(13, authLen - 8)
  const part2 = p.subarray(v + 32, v + 32 + part2Len)
  const pluginEnd = p.indexOf(0, v + 32 + part2Len)
  return {
    version: p.toString('utf8', 1, v),
    connId: p.readUInt32LE(v + 1),
    caps: (capsLow | (capsHigh << 16)) >>> 0,
    collation: p[v + 16],
    status: p.readUInt16LE(v + 17),
    scramble: Buffer.concat([p.subarray(v + 5, v + 13), part2.subarray(0, 12)]),
    plugin: p.toString('utf8', v + 32 + part2Len, pluginEnd),
    reserved: p.subarray(v + 22, v + 32),
  }
}

/** HandshakeResponse41 with lenenc auth data (the caller must set PLUGIN_AUTH_LENENC_CLIENT_DATA). */
export function handshakeResponse(o: { caps: number; user: string; auth: Buffer; plugin: string }): Buffer {
  const head = Buffer.alloc(32)
  head.writeUInt32LE(o.caps >>> 0, 0)
  head.writeUInt32LE(16 * 1024 * 1024, 4)
  head[8] = 255
  if (o.auth.length >= 251) throw new Error('probe only encodes short auth data')
  return Buffer.concat([
    head,
    Buffer.from(`${o.user}\0`, 'utf8'),
    Buffer.from([o.auth.length]),
    o.auth,
    Buffer.from(`${o.plugin}\0`, 'utf8'),
  ])
}

const hash = (algo: string, ...parts: Buffer[]): Buffer => {
  const h = createHash(algo)
  for (const p of parts) h.update(p)
  return h.digest()
}

/** caching_sha2 client token: XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) || scramble)); empty for no password. */
export function sha2Token(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0)
  const p1 = hash('sha256', Buffer.from(password, 'utf8'))
  const p3 = hash('sha256', hash('sha256', p1), scramble)
  return Buffer.from(p1.map((b, i) => b ^ p3[i]))
}

/** mysql_native_password client token: SHA1(pw) XOR SHA1(scramble || SHA1(SHA1(pw))); empty for no password. */
export function nativeToken(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0)
  const p1 = hash('sha1', Buffer.from(password, 'utf8'))
  const p3 = hash('sha1', scramble, hash('sha1', p1))
  return Buffer.from(p1.map((b, i) => b ^ p3[i]))
}
