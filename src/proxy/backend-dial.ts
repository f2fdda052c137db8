/**
 * The backend leg: TCP dial bounded by timeouts.connect, and the optional TLS upgrade after the gateway's own
 * SSLRequest. Both return typed BackendErrors so the session can answer the client with a MySQL ERR.
 */
import net from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import type { BackendTlsConfig, HostPort } from '../config/types.js'
import { BackendError } from '../errors.js'
import { RELAY_HIGH_WATER_MARK } from './relay.js'
import type { BackendReads } from './backend-reads.js'

/** Idle time before the first keepalive probe, on both legs. */
export const TCP_KEEPALIVE_DELAY_MS = 30_000

export function dialBackend(
  target: HostPort,
  timeoutMs: number,
  keepAlive: boolean,
  signal: { aborted: boolean },
  reads?: BackendReads
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: target.host,
      port: target.port,
      noDelay: true,
      keepAlive,
      keepAliveInitialDelay: TCP_KEEPALIVE_DELAY_MS,
      // Not in @types/node's NetConnectOpts, but passed through to the stream (see relay.ts).
      highWaterMark: RELAY_HIGH_WATER_MARK,
      // A TLS backend leg is read by the TLS layer, which never calls onread: only plain legs share the buffer.
      onread: reads?.onread,
    } as net.NetConnectOpts)
    reads?.bind(socket)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new BackendError('GW_ERR_BACKEND_TIMEOUT', `no TCP connection within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.removeAllListeners('error')
      if (signal.aborted) {
        socket.destroy()
        reject(new BackendError('GW_ERR_BACKEND_CONNECT', 'client left before the backend answered'))
        return
      }
      resolve(socket)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      socket.destroy()
      reject(new BackendError('GW_ERR_BACKEND_CONNECT', describeDialError(err), { cause: err }))
    })
  })
}

function describeDialError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'name resolution failed'
    case 'ECONNRESET':
      return 'connection reset'
    default:
      return err.code ?? 'connection failed'
  }
}

const caCache = new Map<string, Buffer>()

function readCa(path: string): Buffer {
  let ca = caCache.get(path)
  if (!ca) {
    ca = readFileSync(path)
    caCache.set(path, ca)
  }
  return ca
}

/** Forget cached CA bundles (after a reload that changed them). */
export function clearBackendCaCache(): void {
  caCache.clear()
}

/**
 * Upgrades the backend socket after the SSLRequest was written. verify-ca checks the chain only;
 * verify-identity also checks the name (servername, else the backend host).
 */
export function upgradeBackend(
  socket: net.Socket,
  target: HostPort,
  config: BackendTlsConfig,
  timeoutMs: number,
  session?: Buffer
): Promise<tls.TLSSocket> {
  const verify = config.mode === 'verify-ca' || config.mode === 'verify-identity'
  const servername = config.servername ?? (net.isIP(target.host) ? undefined : target.host)
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      servername,
      ca: config.ca ? readCa(config.ca) : undefined,
      rejectUnauthorized: verify,
      session,
      checkServerIdentity:
        config.mode === 'verify-identity'
          ? (_host, cert) => tls.checkServerIdentity(config.servername ?? target.host, cert)
          : () => undefined,
    })
    const timer = setTimeout(() => {
      secure.destroy()
      reject(new BackendError('GW_ERR_BACKEND_TIMEOUT', `backend TLS handshake took over ${timeoutMs} ms`))
    }, timeoutMs)
    secure.once('secureConnect', () => {
      clearTimeout(timer)
      secure.removeAllListeners('error')
      resolve(secure)
    })
    secure.once('error', (err) => {
      clearTimeout(timer)
      secure.destroy()
      reject(new BackendError('GW_ERR_BACKEND_TLS', `backend TLS failed: ${err.message}`, { cause: err }))
    })
  })
}
