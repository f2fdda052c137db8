/**
 * Turns an arbitrary chunking of a MySQL byte stream into whole messages. A message is one or more frames:
 * a frame with a 0xFFFFFF payload continues in the next, and a message whose length is a multiple of 0xFFFFFF
 * ends with an empty frame. Every frame consumes a sequence id. Used only during the connection phase, where
 * messages are small and capped, so buffering by concatenation is fine.
 */
import { HEADER_LENGTH, MAX_FRAME_PAYLOAD } from './constants.js'

export interface Message {
  /** Sequence id of the first frame. */
  seq: number
  /** Number of frames (sequence ids) the message used. */
  frames: number
  payload: Buffer
}

export class PacketTooLargeError extends Error {
  constructor(readonly size: number, readonly limit: number) {
    super(`message of at least ${size} bytes exceeds the limit of ${limit}`)
  }
}

export class SequenceGapError extends Error {
  constructor(readonly expected: number, readonly got: number) {
    super(`frame sequence ${got} inside a message, expected ${expected}`)
  }
}

const EMPTY = Buffer.alloc(0)

export class PacketFramer {
  #buffer: Buffer = EMPTY
  readonly #maxMessageBytes: number

  constructor(maxMessageBytes = Number.MAX_SAFE_INTEGER) {
    this.#maxMessageBytes = maxMessageBytes
  }

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
  }

  get buffered(): number {
    return this.#buffer.length
  }

  /**
   * The next complete message, or null when more bytes are needed. Throws PacketTooLargeError as soon as the
   * declared length passes the cap, before the body has arrived, so an attacker cannot make us buffer it.
   */
  next(): Message | null {
    const buf = this.#buffer
    let offset = 0
    let total = 0
    let frames = 0
    let firstSeq = -1
    const parts: Buffer[] = []
    for (;;) {
      if (buf.length - offset < HEADER_LENGTH) return null
      const length = buf.readUIntLE(offset, 3)
      const seq = buf[offset + 3]!
      if (firstSeq === -1) firstSeq = seq
      else if (seq !== ((firstSeq + frames) & 0xff)) throw new SequenceGapError((firstSeq + frames) & 0xff, seq)
      total += length
      if (total > this.#maxMessageBytes) throw new PacketTooLargeError(total, this.#maxMessageBytes)
      if (buf.length - offset - HEADER_LENGTH < length) return null
      parts.push(buf.subarray(offset + HEADER_LENGTH, offset + HEADER_LENGTH + length))
      offset += HEADER_LENGTH + length
      frames++
      if (length < MAX_FRAME_PAYLOAD) break
    }
    this.#buffer = offset === buf.length ? EMPTY : buf.subarray(offset)
    const payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts, total)
    return { seq: firstSeq, frames, payload }
  }

  /** Bytes received but not consumed as messages: they belong to whatever reads the stream next. */
  takeRemainder(): Buffer {
    const rest = this.#buffer
    this.#buffer = EMPTY
    return rest
  }
}

/** Number of frames a payload of this length needs. */
export function frameCount(length: number): number {
  return Math.floor(length / MAX_FRAME_PAYLOAD) + 1
}

/** Frames a payload starting at sequence id `seq`, splitting at 0xFFFFFF and adding the empty terminator. */
export function encodeMessage(seq: number, payload: Buffer): Buffer {
  const frames = frameCount(payload.length)
  const out = Buffer.allocUnsafe(payload.length + frames * HEADER_LENGTH)
  let src = 0
  let dst = 0
  for (let i = 0; i < frames; i++) {
    const length = Math.min(MAX_FRAME_PAYLOAD, payload.length - src)
    out.writeUIntLE(length, dst, 3)
    out[dst + 3] = (seq + i) & 0xff
    payload.copy(out, dst + HEADER_LENGTH, src, src + length)
    src += length
    dst += HEADER_LENGTH + length
  }
  return out
}
