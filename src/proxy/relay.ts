/**
 * After authentication the gateway gets out of the way: bytes are copied both ways with backpressure
 * (pause the reader when the writer's buffer is full, resume on 'drain'), with no per-packet parsing and no
 * per-chunk allocation. One side's FIN is passed on as a FIN (half-close); both sockets are torn down exactly
 * once, by finish(), whatever happens first.
 */
import type net from 'node:net'
import tls from 'node:tls'
import type { BackendReads } from './backend-reads.js'

export type ClosedBy = 'client' | 'backend' | 'idle' | 'error' | 'drain'

export interface RelayCallbacks {
  fromClient(bytes: number): void
  fromBackend(bytes: number): void
  finished(closedBy: ClosedBy, err?: Error): void
  /** Optional inspection of client chunks (gateway-greeting mode tracks COM_CHANGE_USER). Return false to hold. */
  inspectClient?: (chunk: Buffer) => boolean
}

/** Write-buffer size at which the relay pauses the other side (see client-tls.ts and backend-dial.ts). */
export const RELAY_HIGH_WATER_MARK = 256 * 1024

/** A FIN from one side that the other never answers would pin both sockets forever. */
const HALF_CLOSE_GRACE_MS = 30_000

export class Relay {
  #finished = false
  #closedBy: ClosedBy | null = null
  #closedCount = 0
  #graceTimer: NodeJS.Timeout | null = null
  #onClientData: ((chunk: Buffer) => void) | null = null
  #onBackendData: ((chunk: Buffer) => void) | null = null
  #backendDirect: ((bytes: Buffer) => boolean) | null = null

  constructor(
    readonly client: net.Socket,
    readonly backend: net.Socket,
    private readonly cb: RelayCallbacks,
    idleMs: number,
    private readonly backendReads?: BackendReads
  ) {
    this.#pipe(client, backend, 'client')
    this.#pipe(backend, client, 'backend')
    if (idleMs > 0) {
      // Socket activity counts reads and writes, so traffic in either direction keeps the client socket busy.
      client.setTimeout(idleMs, () => this.finish('idle'))
    }
  }

  /** Starts the flow, first delivering bytes that arrived with the last handshake message. */
  start(toBackend: Buffer, toClient: Buffer): void {
    if (toBackend.length > 0) {
      this.cb.fromClient(toBackend.length)
      this.backend.write(toBackend)
    }
    if (toClient.length > 0) {
      this.cb.fromBackend(toClient.length)
      this.client.write(toClient)
    }
    if (this.#backendDirect) {
      // Anything the stream buffered before the switch to direct reads would otherwise never be delivered.
      for (let chunk: Buffer | null; (chunk = this.backend.read() as Buffer | null) !== null; ) this.#backendDirect(chunk)
    }
    this.client.resume()
    this.backend.resume()
  }

  #pipe(src: net.Socket, dst: net.Socket, side: 'client' | 'backend'): void {
    const count = side === 'client' ? this.cb.fromClient : this.cb.fromBackend
    const inspect = side === 'client' ? this.cb.inspectClient : undefined
    const onData = (chunk: Buffer): void => {
      count(chunk.length)
      if (inspect && !inspect(chunk)) return
      if (!dst.write(chunk)) src.pause()
    }
    if (side === 'client') this.#onClientData = onData
    else this.#onBackendData = onData
    if (side === 'backend' && this.backendReads) {
      // Bytes in the shared read buffer are overwritten by the next read. A TLS socket that is not busy hands
      // them to OpenSSL, which copies them during write(); a plain socket may keep a pointer for an async
      // write(2), and a busy one queues the chunk itself, so those get a copy.
      const encrypts = dst instanceof tls.TLSSocket
      this.#backendDirect = (bytes) => {
        count(bytes.length)
        const owned = encrypts && dst.writableLength === 0 && dst.writableCorked === 0
        // false stops reading (readStop) until 'drain' resumes the socket.
        return dst.write(owned ? bytes : Buffer.from(bytes))
      }
      this.backendReads.direct = this.#backendDirect
    } else src.on('data', onData)
    dst.on('drain', () => src.resume())
    src.on('end', () => {
      this.#closedBy ??= side
      if (!dst.writableEnded) dst.end()
    })
    src.on('error', (err) => this.finish('error', err))
    src.on('close', () => {
      this.#closedBy ??= side
      this.#closedCount++
      if (this.#closedCount === 2) this.finish(this.#closedBy)
      else if (!this.#graceTimer) {
        if (!dst.writableEnded) dst.end()
        this.#graceTimer = setTimeout(() => this.finish(this.#closedBy ?? side), HALF_CLOSE_GRACE_MS)
        this.#graceTimer.unref()
      }
    })
  }

  /**
   * Stops copying so the session can run a protocol exchange on the sockets (COM_CHANGE_USER in
   * gateway-greeting mode). Close and error handling stay with the relay.
   */
  suspend(): void {
    this.client.off('data', this.#onClientData!)
    if (this.backendReads) this.backendReads.direct = null
    else this.backend.off('data', this.#onBackendData!)
    this.client.pause()
    this.backend.pause()
  }

  resume(toBackend: Buffer, toClient: Buffer): void {
    if (this.#finished) return
    this.client.on('data', this.#onClientData!)
    if (this.backendReads) this.backendReads.direct = this.#backendDirect
    else this.backend.on('data', this.#onBackendData!)
    this.start(toBackend, toClient)
  }

  /** Writes on behalf of an inspector that held a client chunk. */
  forwardToBackend(chunk: Buffer): void {
    if (!this.backend.write(chunk)) this.client.pause()
  }

  finish(closedBy: ClosedBy, err?: Error): void {
    if (this.#finished) return
    this.#finished = true
    if (this.#graceTimer) clearTimeout(this.#graceTimer)
    this.client.destroy()
    this.backend.destroy()
    this.cb.finished(closedBy, err)
  }

  get finished(): boolean {
    return this.#finished
  }
}
