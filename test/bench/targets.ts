/**
 * The four targets every load runs against, and the run's environment: the started MariaDB, gateway and
 * socat, the certificates and the bench user. Every client (mini client, sysbench, mysql2) takes its
 * address and TLS settings from endpoint() here, so a target means the same thing to all of them.
 */
import type { MariaDbInstance } from '../helpers/mariadb.js'
import type { Endpoint } from './mini-client.js'
import type { Options } from './options.js'
import type { Proc } from './processes.js'
import type { SysbenchTarget } from './sysbench.js'

export type TargetId = 'plain' | 'tls' | 'gateway' | 'socat'
export const TARGET_LABEL: Record<TargetId, string> = {
  plain: 'A direct plaintext',
  tls: 'B direct MariaDB TLS',
  gateway: 'C gateway (TLS)',
  socat: 'D socat TCP hop',
}
export const ALL_TARGETS: TargetId[] = ['plain', 'tls', 'gateway', 'socat']

export interface Env {
  opts: Options
  dir: string
  db: MariaDbInstance
  gateway: Proc
  socat: Proc
  sslDir: string
  caPem: Buffer
  cert: string
  key: string
  user: string
  password: string
  tableSize: number
}

export function endpoint(env: Env, target: TargetId): Endpoint {
  const port = target === 'gateway' ? env.gateway.port : target === 'socat' ? env.socat.port : env.db.port
  const tls = target === 'tls' || target === 'gateway'
  return {
    host: '127.0.0.1',
    port,
    user: env.user,
    password: env.password,
    database: 'sbtest',
    ...(tls ? { tls: { ca: env.caPem, servername: 'localhost' } } : {}),
  }
}

export function sysbenchTarget(env: Env, target: TargetId): SysbenchTarget {
  const ep = endpoint(env, target)
  return { host: ep.host, port: ep.port, user: env.user, password: env.password, db: 'sbtest', ssl: Boolean(ep.tls) }
}

export function proxyOf(env: Env, target: TargetId): Proc | undefined {
  return target === 'gateway' ? env.gateway : target === 'socat' ? env.socat : undefined
}
