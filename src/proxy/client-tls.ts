/**
 * Upgrades the client socket to TLS after its SSLRequest, on the same TCP connection. Bytes of the ClientHello
 * that arrived in the same read as the SSLRequest are put back into the socket before wrapping it (the TLS
 * wrapper replays buffered data), otherwise the handshake would hang.
 */
import tls from 'node:tls'
import { GatewayError } from '../errors.js'
import type { Leg } from './leg.js'
import { RELAY_HIGH_WATER_MARK } from './relay.js'

export interface ClientTlsOptions {
  secureContext?: tls.SecureContext
  SNICallback?: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void
  /** Mutual TLS: require a certificate that chains to the context's CA. */
  requireClientCert: boolean
  /**
   * Ask for a certificate but let the handshake finish without one (a shared listener where only some routes
   * use mutual TLS); the caller checks `peerVerifyError` once it knows the route.
   */
  requestClientCert?: boolean
}

export function upgradeClientTls(leg: Leg, options: ClientTlsOptions): Promise<tls.TLSSocket> {
  const raw = leg.socket
  const leftover = leg.detach()
  if (leftover.length > 0) raw.unshift(leftover)
  const socket = new tls.TLSSocket(raw, {
    isServer: true,
    // The default 16 KiB write buffer is smaller than one 64 KiB backend read, so every chunk of a large
    // result would pause the backend and wait for 'drain' (two epoll_ctl calls per chunk). Buffer up to
    // RELAY_HIGH_WATER_MARK before pushing back; nothing is allocated until it is used.
    highWaterMark: RELAY_HIGH_WATER_MARK,
    secureContext: options.secureContext,
    SNICallback: options.SNICallback,
    requestCert: options.requireClientCert || options.requestClientCert === true,
    // With this set OpenSSL itself fails the handshake when no certificate is sent; an untrusted one is
    // caught by the `authorized` check below (Node defers chain verification to JS).
    rejectUnauthorized: options.requireClientCert,
  } as tls.TLSSocketOptions & { highWaterMark: number })
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      cleanup()
      socket.destroy()
      reject(new GatewayError('GW_ERR_TLS_HANDSHAKE', err.message.split('\n')[0], { cause: err }))
    }
    const onClose = (): void => {
      cleanup()
      reject(new GatewayError('GW_ERR_TLS_HANDSHAKE', 'client closed during the TLS handshake'))
    }
    const onSecure = (): void => {
      cleanup()
      if (options.requireClientCert) {
        const reason = peerVerifyError(socket)
        if (reason) {
          socket.destroy()
          reject(new GatewayError('GW_ERR_TLS_HANDSHAKE', `client certificate rejected: ${reason}`))
          return
        }
        socket.authorized = true
      }
      resolve(socket)
    }
    const cleanup = (): void => {
      socket.off('error', onError)
      socket.off('close', onClose)
      socket.off('secure', onSecure)
    }
    socket.once('error', onError)
    socket.once('close', onClose)
    socket.once('secure', onSecure)
  })
}

/**
 * Node sets `authorized`/`authorizationError` only on sockets accepted by a tls.Server (_tls_wrap.js
 * onServerSocketSecure); a hand-built server TLSSocket never gets them, so read the chain verification result
 * from the handle exactly as that code does. Returns the reason for rejecting, or null when the chain verified.
 */
export function peerVerifyError(socket: tls.TLSSocket): string | null {
  const handle = (socket as unknown as { _handle?: { verifyError(): (Error & { code?: string }) | null } })._handle
  if (!handle) return 'connection closed'
  const err = handle.verifyError()
  return err ? (err.code ?? err.message) : null
}
