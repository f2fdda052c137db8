/**
 * One side of a session during the connection phase: a socket, its framer and its sequence counter.
 * The counter implements "one counter per leg": a message read must carry the leg's next id, a message written
 * is stamped with it. Swallowed and injected messages (SSLRequest, the RSA round trip) then stay right.
 * After authentication the leg is detached and the sockets are handed to the byte relay.
 */
import type net from 'node:net'
import { GatewayError } from '../errors.js'
import { encodeMessage, frameCount, PacketFramer, PacketTooLargeError, type Message } from '../protocol/packet-framer.js'

export class LegClosedError extends Error {
  constructor(readonly side: string, readonly hadError: boolean) {
    super(`${side} closed the connection`)
  }
}

export class SequenceError extends Error {
  constructor(readonly side: string, readonly expected: number, readonly got: number) {
    super(`${side} sent sequence id ${got}, expected ${expected}`)
  }
}

type Waiter = { resolve: (m: Message) => void; reject: (e: Error) => void }

export class Leg {
  seq = 0
  socket: net.Socket
  bytesRead = 0
  #framer: PacketFramer
  #waiter: Waiter | null = null
  #failure: Error | null = null
  #onData = (chunk: Buffer): void => {
    this.bytesRead += chunk.length
    this.#framer.push(chunk)
    this.#pump()
  }
  #onEnd = (): void => this.#fail(new LegClosedError(this.side, false))
  #onClose = (hadError: boolean): void => this.#fail(new LegClosedError(this.side, hadError))
  #onError = (err: Error): void => this.#fail(err)

  constructor(readonly side: 'client' | 'backend', socket: net.Socket, maxMessageBytes: number) {
    this.socket = socket
    this.#framer = new PacketFramer(maxMessageBytes)
    this.#listen()
  }

  #listen(): void {
    this.socket.on('data', this.#onData)
    this.socket.on('end', this.#onEnd)
    this.socket.on('close', this.#onClose)
    this.socket.on('error', this.#onError)
  }

  #unlisten(): void {
    this.socket.off('data', this.#onData)
    this.socket.off('end', this.#onEnd)
    this.socket.off('close', this.#onClose)
    this.socket.off('error', this.#onError)
  }

  #fail(err: Error): void {
    if (!this.#failure) this.#failure = err
    this.#pump()
  }

  #pump(): void {
    const waiter = this.#waiter
    if (!waiter) return
    let message: Message | null
    try {
      message = this.#framer.next()
    } catch (err) {
      this.#waiter = null
      // The oversized message took this sequence id: an ERR in reply must carry the next one.
      if (err instanceof PacketTooLargeError) {
        this.seq = (this.seq + 1) & 0xff
        // An oversized backend message is the backend's fault, not the client's: report it as such.
        if (this.side === 'backend') {
          waiter.reject(new GatewayError('GW_ERR_BACKEND_PROTOCOL', `backend message exceeds maxHandshakeBytes (${err.limit})`))
          return
        }
      }
      waiter.reject(err as Error)
      return
    }
    if (message) {
      this.#waiter = null
      const expected = this.seq
      if (message.seq !== expected) {
        // Answer after what the peer sent: strict clients check the reply follows their own sequence id.
        this.seq = (message.seq + message.frames) & 0xff
        waiter.reject(new SequenceError(this.side, expected, message.seq))
        return
      }
      this.seq = (this.seq + message.frames) & 0xff
      waiter.resolve(message)
    } else if (this.#failure) {
      this.#waiter = null
      waiter.reject(this.#failure)
    }
  }

  /** Bytes that were already read from the socket by someone else (the relay), to be parsed first. */
  feed(bytes: Buffer): void {
    this.#framer.push(bytes)
  }

  /** The next whole message from this side. Rejects on close, oversize, or a sequence id out of order. */
  read(): Promise<Message> {
    if (this.#waiter) throw new Error(`concurrent read on ${this.side} leg`)
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject }
      this.#pump()
    })
  }

  /** Sends a payload stamped with this leg's next sequence id(s). */
  write(payload: Buffer): void {
    const bytes = encodeMessage(this.seq, payload)
    this.seq = (this.seq + frameCount(payload.length)) & 0xff
    this.socket.write(bytes)
  }

  /** Whether the other side has gone away (used to decide if an ERR can still be delivered). */
  get failed(): Error | null {
    return this.#failure
  }

  /**
   * Stops reading and returns bytes that arrived after the last message read: for a client asking for TLS
   * they are the start of its ClientHello, after authentication they belong to the command phase.
   * `pause: false` is for a caller that takes the socket over in the same tick (no read can land in between):
   * pausing a socket read through `onread` costs a readStop/readStart pair of epoll_ctl calls.
   */
  detach(opts: { pause?: boolean } = {}): Buffer {
    this.#unlisten()
    if (opts.pause !== false) this.socket.pause()
    if (this.#waiter) {
      this.#waiter.reject(new Error('leg detached'))
      this.#waiter = null
    }
    return this.#framer.takeRemainder()
  }

  /** Continue on a new socket (the TLS socket wrapping the old one), keeping the counter. */
  reattach(socket: net.Socket): void {
    this.socket = socket
    this.#failure = null
    this.#listen()
  }
}
