/**
 * Finds COM_CHANGE_USER in a client's command-phase byte stream without buffering it: frames are walked by
 * their headers only, and everything that is not a change-user command passes straight through.
 *
 * A frame starts a command when its sequence id is 0, it does not continue a 0xFFFFFF frame, and it is not the
 * wrap-around of a LOAD DATA LOCAL upload (client frames ...254, 255, 0 with no backend bytes in between:
 * during an upload the server is silent, while any real command follows a server answer).
 */
import { COM_CHANGE_USER, HEADER_LENGTH, MAX_FRAME_PAYLOAD } from './constants.js'

export interface TrackResult {
  /** Bytes to pass on now (may be empty). */
  forward: Buffer
  /** Set when a COM_CHANGE_USER frame starts: its bytes from the header on, to be handled as auth. */
  changeUser?: Buffer
}

const EMPTY = Buffer.alloc(0)

export class CommandTracker {
  /** Set by the relay whenever the backend sends bytes. */
  backendSpoke = true
  #pending: Buffer = EMPTY
  #bodyLeft = 0
  #prevSeq = -1
  #prevWasFull = false

  push(chunk: Buffer): TrackResult {
    const data = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk
    this.#pending = EMPTY
    let offset = 0
    for (;;) {
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, data.length - offset)
        this.#bodyLeft -= take
        offset += take
        if (this.#bodyLeft > 0) return { forward: data }
      }
      if (offset === data.length) return { forward: data }
      if (data.length - offset < HEADER_LENGTH) return this.#hold(data, offset)
      const length = data.readUIntLE(offset, 3)
      const seq = data[offset + 3]!
      const startsCommand = seq === 0 && !this.#prevWasFull && !(this.#prevSeq === 255 && !this.backendSpoke)
      if (startsCommand && length > 0) {
        if (data.length - offset === HEADER_LENGTH) return this.#hold(data, offset)
        if (data[offset + HEADER_LENGTH] === COM_CHANGE_USER) {
          this.reset()
          return { forward: data.subarray(0, offset), changeUser: data.subarray(offset) }
        }
      }
      this.backendSpoke = false
      this.#prevSeq = seq
      this.#prevWasFull = length === MAX_FRAME_PAYLOAD
      this.#bodyLeft = length
      offset += HEADER_LENGTH
    }
  }

  /** Keeps an unclassifiable tail (a partial header, or a header whose first body byte is missing). */
  #hold(data: Buffer, offset: number): TrackResult {
    this.#pending = Buffer.from(data.subarray(offset))
    return { forward: data.subarray(0, offset) }
  }

  /** After a change-user exchange the stream is back at a command boundary. */
  reset(): void {
    this.#pending = EMPTY
    this.#bodyLeft = 0
    this.#prevSeq = -1
    this.#prevWasFull = false
    this.backendSpoke = true
  }
}
