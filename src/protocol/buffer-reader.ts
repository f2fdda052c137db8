/** A bounds-checked cursor over one payload. Reads past the end throw MalformedPacketError. */
export class MalformedPacketError extends Error {}

export class BufferReader {
  offset = 0
  constructor(readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.offset
  }

  #need(n: number): void {
    if (this.offset + n > this.buf.length) throw new MalformedPacketError(`truncated at byte ${this.offset}`)
  }

  int1(): number {
    this.#need(1)
    return this.buf[this.offset++]!
  }

  int2(): number {
    this.#need(2)
    const v = this.buf.readUInt16LE(this.offset)
    this.offset += 2
    return v
  }

  int4(): number {
    this.#need(4)
    const v = this.buf.readUInt32LE(this.offset)
    this.offset += 4
    return v
  }

  bytes(n: number): Buffer {
    this.#need(n)
    const v = this.buf.subarray(this.offset, this.offset + n)
    this.offset += n
    return v
  }

  /** NUL-terminated bytes (the NUL is consumed, not returned). */
  nulBytes(): Buffer {
    const end = this.buf.indexOf(0, this.offset)
    if (end === -1) throw new MalformedPacketError(`missing NUL after byte ${this.offset}`)
    const v = this.buf.subarray(this.offset, end)
    this.offset = end + 1
    return v
  }

  /** Length-encoded integer; 0xFB (NULL) and 0xFF are not valid lengths in the handshake. */
  lenenc(): number {
    const first = this.int1()
    if (first < 0xfb) return first
    if (first === 0xfc) return this.int2()
    if (first === 0xfd) {
      this.#need(3)
      const v = this.buf.readUIntLE(this.offset, 3)
      this.offset += 3
      return v
    }
    if (first === 0xfe) {
      this.#need(8)
      const v = Number(this.buf.readBigUInt64LE(this.offset))
      this.offset += 8
      return v
    }
    throw new MalformedPacketError(`invalid length-encoded integer 0x${first.toString(16)}`)
  }

  rest(): Buffer {
    const v = this.buf.subarray(this.offset)
    this.offset = this.buf.length
    return v
  }
}

export function encodeLenenc(n: number): Buffer {
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
