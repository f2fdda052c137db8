/**
 * TCP_NODELAY and keepalive for accepted client sockets. Linux copies both (with the keepalive timings) from the
 * listening socket into every socket accept() returns, so setting them once on the listener saves five
 * setsockopt(2) calls per connection; elsewhere, or on a listener we do not own, each socket gets them.
 */
import type net from 'node:net'
import { TCP_KEEPALIVE_DELAY_MS } from './backend-dial.js'

/** The libuv TCP handle behind a listening socket (what the supervisor hands a child). */
interface TcpHandle {
  setNoDelay(enable: boolean): number
  setKeepAlive(enable: boolean, delaySeconds: number): number
}

export class ClientSocketOptions {
  #listener: TcpHandle | undefined
  #keepAlive: boolean

  constructor(keepAlive: boolean) {
    this.#keepAlive = keepAlive
  }

  /** Presets the options on the listening socket; a failure leaves them to each accepted socket. */
  presetOnListener(handle: unknown): void {
    if (process.platform !== 'linux') return
    const h = handle as Partial<TcpHandle> | null
    if (typeof h?.setNoDelay !== 'function' || typeof h.setKeepAlive !== 'function') return
    if (h.setNoDelay(true) !== 0 || h.setKeepAlive(this.#keepAlive, TCP_KEEPALIVE_DELAY_MS / 1000) !== 0) return
    this.#listener = h as TcpHandle
  }

  /** A reload may turn keepalive on or off: the listener's setting applies to the next accepted sockets. */
  setKeepAlive(keepAlive: boolean): void {
    if (keepAlive === this.#keepAlive) return
    this.#keepAlive = keepAlive
    if (this.#listener && this.#listener.setKeepAlive(keepAlive, TCP_KEEPALIVE_DELAY_MS / 1000) !== 0) this.#listener = undefined
  }

  applyTo(socket: net.Socket): void {
    if (this.#listener) return
    socket.setNoDelay(true)
    // Dead clients (a laptop that went to sleep) must not pin a backend session forever.
    if (this.#keepAlive) socket.setKeepAlive(true, TCP_KEEPALIVE_DELAY_MS)
  }
}
