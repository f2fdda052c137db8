/**
 * Listening sockets owned by the supervisor, handed to children.
 *
 * Node 20 has no `reusePort`, and a net.Server listening in the supervisor would accept connections there too.
 * So we do what Node's cluster module does for shared handles (lib/internal/cluster/shared_handle.js): create a
 * TCP handle that is BOUND but not listening with the internal `net._createServerHandle`, keep it for the life of
 * the listener and send it to each child with the 'start' message. The child calls `server.listen(handle)`,
 * which puts the one kernel socket into LISTEN state. Because the supervisor keeps its descriptor, the socket
 * stays in LISTEN while a child dies and its replacement starts: clients wait in the backlog instead of being
 * refused, and a replacing child can listen next to the draining one.
 */
import { lookup } from 'node:dns/promises'
import net from 'node:net'
import { getSystemErrorName } from 'node:util'
import type { HostPort } from '../config/types.js'
import { listenKey } from '../config/types.js'
import { GatewayError } from '../errors.js'

/** The raw libuv TCP wrap. Opaque to us; child_process.send() recognizes it ('net.Native'). */
export interface RawTcpHandle {
  getsockname(out: Record<string, unknown>): number
  close(callback?: () => void): void
}

type CreateServerHandle = (
  address: string,
  port: number,
  addressType: 4 | 6,
  fd?: number,
  flags?: number
) => RawTcpHandle | number

export interface ListenHandle {
  readonly key: string
  /** Address and port actually bound (port resolved when the config asked for 0). */
  readonly address: string
  readonly port: number
  readonly handle: RawTcpHandle
  close(): void
}

function createServerHandle(): CreateServerHandle {
  const fn = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle
  if (typeof fn !== 'function') {
    // Present in every Node release we support (>= 20); fail loudly if a future Node removes it.
    throw new GatewayError('GW_ERR_LISTEN', 'this Node.js version lacks net._createServerHandle')
  }
  return fn
}

function bindError(key: string, errno: number): GatewayError {
  let name: string
  try {
    name = getSystemErrorName(errno)
  } catch {
    name = `errno ${errno}`
  }
  const err = new GatewayError('GW_ERR_LISTEN', `cannot bind ${key}: ${name}`)
  Object.assign(err, { errno: name })
  return err
}

/** Binds (without listening) the address of a listener. Rejects with GW_ERR_LISTEN naming the address. */
export async function bindListenHandle(listen: HostPort): Promise<ListenHandle> {
  const key = listenKey(listen)
  let address = listen.host
  let family = net.isIP(address)
  if (family === 0) {
    try {
      const found = await lookup(address)
      address = found.address
      family = found.family
    } catch (err) {
      throw new GatewayError('GW_ERR_LISTEN', `cannot bind ${key}: ${(err as Error).message}`, { cause: err })
    }
  }
  const handle = createServerHandle()(address, listen.port, family === 6 ? 6 : 4)
  if (typeof handle === 'number') throw bindError(key, handle)
  // libuv defers EADDRINUSE from bind() to listen() (tcp->delayed_error), and a child listening on a socket
  // whose bind failed would silently get a random port. getsockname() reports the deferred error here.
  const out: Record<string, unknown> = {}
  const err = handle.getsockname(out)
  if (err !== 0) {
    handle.close()
    throw bindError(key, err)
  }
  let closed = false
  return {
    key,
    address: String(out.address),
    port: Number(out.port),
    handle,
    close() {
      if (closed) return
      closed = true
      handle.close()
    },
  }
}
