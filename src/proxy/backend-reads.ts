/**
 * Reads from a plain backend socket land in one buffer shared by every session of the process (net's `onread`)
 * instead of a fresh 64 KiB allocation per read; the larger buffer also takes a big result in fewer read(2)
 * calls. Sharing is safe because the event loop delivers one read at a time and every consumer is done with the
 * bytes when it returns: the relay either hands them to OpenSSL, which copies them during write(), or copies
 * them itself. Until the relay takes over (and while it is suspended), reads are copied and pushed into the
 * socket's stream, so the connection-phase code reads the socket as it reads any other.
 */
import type net from 'node:net'

export const BACKEND_READ_BUFFER_BYTES = 256 * 1024

let shared: Buffer | undefined

/** Returns false to stop reading until the socket is resumed (backpressure). */
export type DirectReader = (bytes: Buffer) => boolean

export class BackendReads {
  #socket: net.Socket | undefined
  /** While set, reads go here instead of 'data'; the bytes are only valid during the call. */
  direct: DirectReader | null = null

  /** For `net.connect({ onread })`. */
  readonly onread: net.OnReadOpts = {
    buffer: (shared ??= Buffer.allocUnsafe(BACKEND_READ_BUFFER_BYTES)),
    callback: (nread: number, buf: Uint8Array): boolean => {
      const bytes = (buf as Buffer).subarray(0, nread)
      if (this.direct) return this.direct(bytes)
      // Through the stream as if read normally: buffered while paused, 'data' while flowing.
      return this.#socket!.push(Buffer.from(bytes))
    },
  }

  bind(socket: net.Socket): void {
    this.#socket = socket
  }
}
