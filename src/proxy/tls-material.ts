/**
 * A route's client-facing TLS material. Build new, then swap: a reload that fails to read or parse keeps the
 * old context, so new handshakes never see a half-loaded certificate and open connections are never touched
 * (they hold their own reference to the context they started with).
 */
import { constants, createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import tls from 'node:tls'
import type { RouteTlsConfig } from '../config/types.js'
import { TlsLoadError } from '../errors.js'

export interface CertInfo {
  subject: string
  notAfter: string
  notAfterUnix: number
  fingerprint256: string
}

/**
 * Node's default list with AES-128-GCM moved ahead of AES-256-GCM, and the server's order honoured: on a
 * 2-core box the symmetric cipher is a visible share of per-byte CPU, and AES-128-GCM is cheaper while still
 * strong. Used only when the route sets no tls.ciphers.
 */
export const DEFAULT_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  '!aNULL',
  '!eNULL',
  '!MD5',
  '!SHA1',
  '!RC4',
].join(':')

interface Loaded {
  context: tls.SecureContext
  info: CertInfo
  /** Content hash of the client CA, to decide whether resumption tickets may survive a reload. */
  clientCaPem?: string
}

/**
 * Session tickets let resuming clients (mysql2 does) skip the RSA/ECDSA signature: a large CPU saving per
 * connection. The keys are shared by every connection of the route and kept across a certificate or key
 * rotation (a resumed session was authenticated against a certificate that was valid for this route). They
 * are replaced when the client CA changes, so a session authorized under the old CA cannot be resumed.
 */
export class TlsMaterial {
  #loaded: Loaded
  #ticketKeys: Buffer

  private constructor(readonly routeName: string, private config: RouteTlsConfig, loaded: Loaded, ticketKeys: Buffer) {
    this.#loaded = loaded
    this.#ticketKeys = ticketKeys
  }

  static async load(routeName: string, config: RouteTlsConfig): Promise<TlsMaterial> {
    const ticketKeys = randomBytes(48)
    return new TlsMaterial(routeName, config, await build(routeName, config, ticketKeys), ticketKeys)
  }

  get context(): tls.SecureContext {
    return this.#loaded.context
  }

  get info(): CertInfo {
    return this.#loaded.info
  }

  get requestClientCert(): boolean {
    return this.config.clientCA !== undefined
  }

  /** Re-reads the files. Throws TlsLoadError and keeps the current material if anything is wrong. */
  async reload(config: RouteTlsConfig = this.config): Promise<{ changed: boolean }> {
    let ticketKeys = this.#ticketKeys
    const fresh = await build(this.routeName, config, ticketKeys)
    if (fresh.clientCaPem !== this.#loaded.clientCaPem) {
      ticketKeys = randomBytes(48)
      fresh.context.context.setTicketKeys(ticketKeys)
    }
    const changed = fresh.info.fingerprint256 !== this.#loaded.info.fingerprint256 || ticketKeys !== this.#ticketKeys
    this.config = config
    this.#loaded = fresh
    this.#ticketKeys = ticketKeys
    return { changed }
  }
}

async function readPem(routeName: string, what: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw new TlsLoadError(`route ${routeName}: cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`, { cause: err })
  }
}

async function build(routeName: string, config: RouteTlsConfig, ticketKeys: Buffer): Promise<Loaded> {
  if (!config.cert || !config.key) throw new TlsLoadError(`route ${routeName}: tls.cert and tls.key are required`)
  const [certPem, keyPem, caPem] = await Promise.all([
    readPem(routeName, 'certificate', config.cert),
    readPem(routeName, 'key', config.key),
    config.clientCA ? readPem(routeName, 'client CA', config.clientCA) : Promise.resolve(undefined),
  ])
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certPem)
    // Parse errors must not echo file contents: the key file is secret.
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) {
      throw new TlsLoadError(`route ${routeName}: key ${config.key} does not match certificate ${config.cert}`)
    }
  } catch (err) {
    if (err instanceof TlsLoadError) throw err
    throw new TlsLoadError(`route ${routeName}: cannot parse certificate ${config.cert} or key ${config.key}`)
  }
  let context: tls.SecureContext
  try {
    context = tls.createSecureContext({
      cert: certPem,
      key: keyPem,
      ca: caPem,
      minVersion: config.minVersion,
      ciphers: config.ciphers ?? DEFAULT_CIPHERS,
      secureOptions: constants.SSL_OP_CIPHER_SERVER_PREFERENCE,
      ticketKeys,
      // Keep resumption useful for pooled clients that reconnect now and then.
      sessionTimeout: 3600,
      // OpenSSL refuses to resume sessions without an id context when client certificates are requested.
      sessionIdContext: createHash('sha256').update(routeName).digest('hex').slice(0, 32),
    })
  } catch (err) {
    throw new TlsLoadError(`route ${routeName}: TLS context rejected: ${(err as Error).message.split('\n')[0]}`)
  }
  const notAfterUnix = Math.floor(Date.parse(cert.validTo) / 1000)
  return {
    context,
    info: {
      subject: cert.subject.replace(/\n/g, ', '),
      notAfter: new Date(notAfterUnix * 1000).toISOString(),
      notAfterUnix,
      fingerprint256: cert.fingerprint256,
    },
    clientCaPem: caPem,
  }
}
