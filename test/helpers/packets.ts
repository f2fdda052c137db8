/**
 * Byte builders for protocol fixtures, written independently of src/protocol so a codec bug cannot hide in a
 * shared helper. Integers are little-endian as on the wire.
 */

export const int1 = (n: number): Buffer => Buffer.from([n & 0xff])

export function int2(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16LE(n)
  return b
}

export function int3(n: number): Buffer {
  const b = Buffer.alloc(3)
  b.writeUIntLE(n, 0, 3)
  return b
}

export function int4(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}

/** Length-encoded integer (MySQL "int<lenenc>"). */
export function lenenc(n: number): Buffer {
  if (n < 0xfb) return int1(n)
  if (n <= 0xffff) return Buffer.concat([int1(0xfc), int2(n)])
  if (n <= 0xffffff) return Buffer.concat([int1(0xfd), int3(n)])
  const b = Buffer.alloc(9)
  b[0] = 0xfe
  b.writeBigUInt64LE(BigInt(n), 1)
  return b
}

/** Length-encoded string: lenenc length, then the bytes. */
export function lenencStr(s: string | Buffer): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s
  return Buffer.concat([lenenc(bytes.length), bytes])
}

/** NUL-terminated string. */
export function nul(s: string | Buffer): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'latin1') : s
  return Buffer.concat([bytes, int1(0)])
}

export const zeros = (n: number): Buffer => Buffer.alloc(n)

/** Concatenates parts; strings are read as hex with whitespace ignored (so fixtures can be laid out by field). */
export function bytes(...parts: Array<Buffer | string | number[]>): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? hex(p) : Buffer.from(p))))
}

export function hex(s: string): Buffer {
  const clean = s.replace(/\s+/g, '')
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`not hex: ${s}`)
  return Buffer.from(clean, 'hex')
}

/** One frame: 3-byte length, sequence id, payload. Does not split; the payload must be <= 0xFFFFFF. */
export function frame(seq: number, payload: Buffer): Buffer {
  if (payload.length > 0xffffff) throw new RangeError('frame() does not split; build continuation frames by hand')
  return Buffer.concat([int3(payload.length), int1(seq), payload])
}

/** The payload of a single whole frame (header checked, not trusted to a codec). */
export function payloadOf(wholeFrame: Buffer): Buffer {
  const length = wholeFrame.readUIntLE(0, 3)
  if (wholeFrame.length !== 4 + length) throw new Error(`frame header says ${length}, have ${wholeFrame.length - 4}`)
  return wholeFrame.subarray(4)
}

/** Decodes connection attributes (lenenc key, lenenc value pairs) into a map. */
export function decodeAttributes(buf: Buffer): Map<string, string> {
  const out = new Map<string, string>()
  let p = 0
  const readLenenc = (): number => {
    const first = buf[p++]!
    if (first < 0xfb) return first
    const width = first === 0xfc ? 2 : first === 0xfd ? 3 : 0
    if (width === 0) throw new Error(`unexpected lenenc prefix 0x${first.toString(16)} in attributes`)
    p += width
    return buf.readUIntLE(p - width, width)
  }
  const readStr = (): string => {
    const n = readLenenc()
    const s = buf.toString('utf8', p, p + n)
    p += n
    return s
  }
  while (p < buf.length) {
    const key = readStr()
    out.set(key, readStr())
  }
  if (p !== buf.length) throw new Error('attributes overran their length')
  return out
}

/** Indexes at which two equal-length buffers differ. */
export function diffIndexes(a: Buffer, b: Buffer): number[] {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`)
  const out: number[] = []
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i)
  return out
}
