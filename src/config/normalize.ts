/**
 * Schema-valid YAML data -> RouteConfig values: defaults merged object by object, durations in milliseconds,
 * addresses parsed, relative paths made absolute. Each merged value remembers the key path it came from,
 * so a problem found later (a bad CA from `defaults`) is reported where the operator wrote it.
 */
import path from 'node:path'
import { parseAddress } from './addresses.js'
import { DURATION_MESSAGE, MAX_DURATION_MS, parseDuration } from './durations.js'
import type { KeyPath, Problems } from './positions.js'
import { normalizeServerName } from './server-names.js'
import type {
  AdminConfig,
  BackendTlsConfig,
  GreetingMode,
  HostPort,
  LogFormat,
  LogLevel,
  RouteConfig,
  RouteTlsConfig,
  TimeoutsConfig,
} from './types.js'

type Raw = Record<string, unknown>

/**
 * What a route gets when neither it nor `defaults` sets a key. The schema's `default` annotations document
 * the same values (test/unit/config/schema-defaults.test.ts keeps the two equal).
 */
export const BUILTIN_DEFAULTS = {
  log: { level: 'info' as LogLevel, format: 'json' as LogFormat },
  tls: { mode: 'required' as RouteTlsConfig['mode'], minVersion: 'TLSv1.2' as RouteTlsConfig['minVersion'] },
  backendTls: { mode: 'disabled' as BackendTlsConfig['mode'] },
  timeouts: { connect: 5_000, handshake: 8_000, idle: 0 },
  maxConnections: 1000,
  maxHandshakeBytes: 1_048_576,
  drainTimeout: 30_000,
  tcpKeepAlive: true,
  greeting: 'backend' as GreetingMode,
  default: false,
  admin: { shutdownDelay: 0 },
} as const

/** A bare port binds every IPv4 interface for routes, but only loopback for the unauthenticated admin endpoint. */
export const ROUTE_BARE_PORT_HOST = '0.0.0.0'
export const ADMIN_BARE_PORT_HOST = '127.0.0.1'

/** A file the gateway will read, with where it was configured. */
export interface FileRef {
  kind: 'cert' | 'key' | 'ca'
  /** Absolute path. */
  file: string
  at: KeyPath
}

/** A normalized route plus what the cross-checks and file checks need to know about its origin. */
export interface RouteDraft {
  index: number
  route: RouteConfig
  /** False when listen did not parse: the route then takes no part in the listener checks. */
  listenOk: boolean
  /** Key path of each merged value that the text spells out (route's own, else defaults'). */
  origin: (section: string, key?: string) => KeyPath | undefined
  certKey?: { cert: FileRef; key: FileRef }
  cas: FileRef[]
}

const asRaw = (v: unknown): Raw => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : {})

export function normalizeLog(data: Raw): { level: LogLevel; format: LogFormat } {
  const log = asRaw(data['log'])
  return {
    level: (log['level'] as LogLevel | undefined) ?? BUILTIN_DEFAULTS.log.level,
    format: (log['format'] as LogFormat | undefined) ?? BUILTIN_DEFAULTS.log.format,
  }
}

export function normalizeAdmin(data: Raw, problems: Problems): AdminConfig | undefined {
  if (data['admin'] === undefined) return undefined
  const admin = asRaw(data['admin'])
  const listen = address(admin['listen'], ['admin', 'listen'], ADMIN_BARE_PORT_HOST, problems)
  const delay = admin['shutdownDelay']
  // A bad delay is recorded in `problems` (the file is rejected); the listen address is still returned so the
  // cross-checks on it report their problems in the same pass.
  const shutdownDelayMs =
    delay === undefined ? undefined : duration(delay, ['admin', 'shutdownDelay'], false, problems)
  return listen ? { listen, shutdownDelayMs: shutdownDelayMs ?? BUILTIN_DEFAULTS.admin.shutdownDelay } : undefined
}

/**
 * Always returns a draft so that later checks still run on the rest of the route; problems found here are
 * added to `problems` (and make the whole file invalid); `listenOk` says whether listen parsed.
 */
export function normalizeRoute(data: Raw, index: number, configDir: string, problems: Problems): RouteDraft {
  const raw = asRaw((data['routes'] as unknown[])[index])
  const defaults = asRaw(data['defaults'])
  const base: KeyPath = ['routes', index]

  // Route value, else the defaults value, else undefined (the caller falls back to BUILTIN_DEFAULTS).
  const origin = (section: string, key?: string): KeyPath | undefined => {
    const own = key === undefined ? raw[section] : asRaw(raw[section])[key]
    if (own !== undefined) return key === undefined ? [...base, section] : [...base, section, key]
    if (section === 'name' || section === 'listen' || section === 'backend') return undefined
    const dflt = key === undefined ? defaults[section] : asRaw(defaults[section])[key]
    if (dflt !== undefined) return key === undefined ? ['defaults', section] : ['defaults', section, key]
    return undefined
  }
  const value = (section: string, key?: string): unknown => {
    const at = origin(section, key)
    if (!at) return undefined
    return at[0] === 'defaults' ? lookup(defaults, at.slice(1)) : lookup(raw, at.slice(2))
  }
  const file = (kind: FileRef['kind'], section: string, key: string): FileRef | undefined => {
    const at = origin(section, key)
    const rel = value(section, key)
    return at && typeof rel === 'string' ? { kind, file: path.resolve(configDir, rel), at } : undefined
  }
  const ms = (section: string, key: string | undefined, builtin: number, positive: boolean): number => {
    const at = origin(section, key)
    if (!at) return builtin
    return duration(value(section, key), at, positive, problems) ?? builtin
  }

  const listen = address(raw['listen'], [...base, 'listen'], ROUTE_BARE_PORT_HOST, problems)
  const backend = address(raw['backend'], [...base, 'backend'], undefined, problems)

  const tlsMode = (value('tls', 'mode') as RouteTlsConfig['mode'] | undefined) ?? BUILTIN_DEFAULTS.tls.mode
  const minVersion =
    (value('tls', 'minVersion') as RouteTlsConfig['minVersion'] | undefined) ?? BUILTIN_DEFAULTS.tls.minVersion
  const tls: RouteTlsConfig = { mode: tlsMode, minVersion }
  const cas: FileRef[] = []
  let certKey: RouteDraft['certKey']
  if (tlsMode !== 'disabled') {
    const cert = file('cert', 'tls', 'cert')
    const key = file('key', 'tls', 'key')
    // The mode may come from defaults or the built-in default, so the schema alone cannot require these.
    const why = `is required when tls.mode is ${tlsMode}${origin('tls', 'mode') ? '' : ' (the default)'}`
    if (!cert) problems.add([...base, 'tls', 'cert'], why)
    if (!key) problems.add([...base, 'tls', 'key'], why)
    if (cert && key) {
      tls.cert = cert.file
      tls.key = key.file
      certKey = { cert, key }
    }
    const clientCA = file('ca', 'tls', 'clientCA')
    if (clientCA) {
      tls.clientCA = clientCA.file
      cas.push(clientCA)
    }
  } else if (raw['tls'] && asRaw(raw['tls'])['clientCA'] !== undefined) {
    // Refused rather than ignored: whoever wrote it believes clients are being authenticated.
    problems.add([...base, 'tls', 'clientCA'], 'has no effect when tls.mode is disabled (no client is authenticated)')
  }
  const ciphers = value('tls', 'ciphers')
  if (typeof ciphers === 'string') tls.ciphers = ciphers

  const backendMode =
    (value('backendTls', 'mode') as BackendTlsConfig['mode'] | undefined) ?? BUILTIN_DEFAULTS.backendTls.mode
  const backendTls: BackendTlsConfig = { mode: backendMode }
  if (backendMode === 'verify-ca' || backendMode === 'verify-identity') {
    const ca = file('ca', 'backendTls', 'ca')
    if (ca) {
      backendTls.ca = ca.file
      cas.push(ca)
    }
  } else if (asRaw(raw['backendTls'])['ca'] !== undefined) {
    // A CA from `defaults` is simply not used by routes that do not verify; one set on the route itself
    // signals the belief that the backend is verified, which it would not be.
    const hint = 'use verify-ca or verify-identity'
    problems.add([...base, 'backendTls', 'ca'], `has no effect when backendTls.mode is ${backendMode}; ${hint}`)
  }
  const servername = value('backendTls', 'servername')
  if (backendMode !== 'disabled' && typeof servername === 'string') backendTls.servername = servername

  const timeouts: TimeoutsConfig = {
    connectMs: ms('timeouts', 'connect', BUILTIN_DEFAULTS.timeouts.connect, true),
    handshakeMs: ms('timeouts', 'handshake', BUILTIN_DEFAULTS.timeouts.handshake, true),
    idleMs: ms('timeouts', 'idle', BUILTIN_DEFAULTS.timeouts.idle, false),
  }

  const route: RouteConfig = {
    name: raw['name'] as string,
    listen: listen ?? { host: '', port: 0 },
    backend: backend ?? { host: '', port: 0 },
    tls,
    backendTls,
    timeouts,
    maxConnections: (value('maxConnections') as number | undefined) ?? BUILTIN_DEFAULTS.maxConnections,
    maxHandshakeBytes: (value('maxHandshakeBytes') as number | undefined) ?? BUILTIN_DEFAULTS.maxHandshakeBytes,
    drainTimeoutMs: ms('drainTimeout', undefined, BUILTIN_DEFAULTS.drainTimeout, false),
    tcpKeepAlive: (value('tcpKeepAlive') as boolean | undefined) ?? BUILTIN_DEFAULTS.tcpKeepAlive,
    // SNI and DNS names compare without regard to case; one spelling keeps matching and duplicate checks simple.
    serverNames: ((raw['serverNames'] as string[] | undefined) ?? []).map(normalizeServerName),
    default: (raw['default'] as boolean | undefined) ?? BUILTIN_DEFAULTS.default,
    greeting: (value('greeting') as GreetingMode | undefined) ?? BUILTIN_DEFAULTS.greeting,
  }
  if (typeof raw['serverVersion'] === 'string') route.serverVersion = raw['serverVersion']

  return { index, route, listenOk: listen !== undefined, origin, certKey, cas }
}

function lookup(obj: Raw, keys: KeyPath): unknown {
  let node: unknown = obj
  for (const key of keys) node = asRaw(node)[key as string]
  return node
}

function address(value: unknown, at: KeyPath, bareHost: string | undefined, problems: Problems): HostPort | undefined {
  const result = parseAddress(value, bareHost)
  if (result.ok) return result.value
  problems.add(at, result.message)
  return undefined
}

function duration(value: unknown, at: KeyPath, positive: boolean, problems: Problems): number | undefined {
  const ms = parseDuration(value)
  if (ms === undefined) {
    problems.add(at, DURATION_MESSAGE)
    return undefined
  }
  if (ms > MAX_DURATION_MS) {
    problems.add(at, `must be at most 596h (${MAX_DURATION_MS} ms, the longest timer Node.js supports)`)
    return undefined
  }
  if (positive && ms === 0) {
    // A zero connect or handshake timeout would mean "wait forever" for a peer that never answers.
    problems.add(at, 'must be greater than 0')
    return undefined
  }
  return ms
}
