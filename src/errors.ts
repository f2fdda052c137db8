/**
 * Every failure the gateway reports has a stable code from this registry (documented in README "Error codes").
 * Callers branch on `code`, never on message text.
 */
export const ERROR_CODES = {
  GW_ERR_CONFIG_INVALID: 'the configuration file failed validation',
  GW_ERR_CONFIG_READ: 'the configuration file could not be read or parsed',
  GW_ERR_CERT_LOAD: 'a certificate, key or CA file could not be loaded',
  GW_ERR_LISTEN: 'a listener could not bind its address',
  GW_ERR_PACKET_TOO_LARGE: 'a message before authentication exceeded maxHandshakeBytes',
  GW_ERR_BAD_HANDSHAKE: 'the client sent a malformed or unexpected handshake packet',
  GW_ERR_CLIENT_NO_TLS: 'the route requires TLS and the client did not ask for it',
  GW_ERR_TLS_HANDSHAKE: 'the client TLS handshake failed',
  GW_ERR_BACKEND_CONNECT: 'the backend refused or could not be reached',
  GW_ERR_BACKEND_TIMEOUT: 'the backend did not answer within timeouts.connect',
  GW_ERR_BACKEND_TLS: 'the backend TLS leg could not be established or verified',
  GW_ERR_BACKEND_PROTOCOL: 'the backend sent something the gateway could not relay',
  GW_ERR_HANDSHAKE_TIMEOUT: 'the connection phase exceeded timeouts.handshake',
  GW_ERR_TOO_MANY_CONNECTIONS: 'the route reached maxConnections',
  GW_ERR_NO_ROUTE: 'no route matched the client (SNI) on a shared listener',
  GW_ERR_AUTH_RSA: 'the gateway could not complete RSA password exchange with the backend',
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export class GatewayError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code], options)
    this.code = code
    this.name = new.target.name
  }
}

export class ConfigError extends GatewayError {
  /** One line per problem: "file:line:col key.path: message". */
  readonly problems: string[]
  constructor(code: 'GW_ERR_CONFIG_INVALID' | 'GW_ERR_CONFIG_READ', problems: string[], options?: { cause?: unknown }) {
    super(code, problems.join('\n'), options)
    this.problems = problems
  }
}

export class TlsLoadError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GW_ERR_CERT_LOAD', message, options)
  }
}

export class ProtocolError extends GatewayError {}
export class BackendError extends GatewayError {}
