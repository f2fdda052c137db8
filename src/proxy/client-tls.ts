/**
 * Upgrades the client socket to TLS after its SSLRequest, on the same TCP connection. Bytes of the ClientHello
 * that arrived in the same read as the SSLRequest are put back into the socket before wrapping it (the TLS
 * wrapper replays buffered data), otherwise the handshake would hang.
 */
import tls from 'node:tls'
import { GatewayError } from '../errors.js'
import type { Leg } from './leg.js'

export interface ClientTlsOptions {
  secureContext?: tls.SecureContext
  SNICallback?: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void
  /** Mutual TLS: require a certificate that chains to the context's CA. */
  requireClientCert: boolean
}

export function upgradeClientTls(leg: Leg, options: ClientTlsOptions): Promise<tls.TLSSocket> {
  const raw = leg.socket
  const leftover = leg.detach()
  if (leftover.length > 0) raw.unshift(leftover)
  const socket = new tls.TLSSocket(raw, {
    isServer: true,
    secureContext: options.secureContext,
    SNICallback: options.SNICallback,
    requestCert: options.requireClientCert,
    // With this set OpenSSL itself fails the handshake when no certificate is sent; an untrusted one is
    // caught by the `authorized` check below (Node defers chain verification to JS).
    rejectUnauthorized: options.requireClientCert,
  })
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
      if (options.requireClientCert && !socket.authorized) {
        const reason = socket.authorizationError ? String(socket.authorizationError) : 'no client certificate'
        socket.destroy()
        reject(new GatewayError('GW_ERR_TLS_HANDSHAKE', `client certificate rejected: ${reason}`))
        return
      }
      socket.setNoDelay(true)
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
