/**
 * The targets every load runs against (A-D always, E unless --no-node-hop), and the run's environment: the
 * started MariaDB, gateway, socat and Node.js hop, the certificates and the bench user. Every client (mini
 * client, sysbench, mysql2) takes its address and TLS settings from endpoint() here, so a target means the same
 * thing to all of them.
 */
import type { MariaDbInstance } from '../helpers/mariadb.js'
import type { Endpoint } from './mini-client.js'
import type { Options } from './options.js'
import type { Proc } from './processes.js'
import type { SysbenchTarget } from './sysbench.js'

export type TargetId = 'plain' | 'tls' | 'gateway' | 'socat' | 'nodehop'
export const TARGET_LABEL: Record<TargetId, string> = {
  plain: 'A direct plaintext',
  tls: 'B direct MariaDB TLS',
  gateway: 'C gateway (TLS)',
  socat: 'D socat TCP hop',
  nodehop: 'E Node.js TCP hop',
}
/** Every target, in table order; the report shows those that have results. */
export const ALL_TARGETS: TargetId[] = ['plain', 'tls', 'gateway', 'socat', 'nodehop']

export interface Env {
  opts: Options
  dir: string
  db: MariaDbInstance
  gateway: Proc
  socat: Proc
  /** Absent with --no-node-hop. */
  nodeHop?: Proc
  sslDir: string
  caPem: Buffer
  cert: string
  key: string
  user: string
  password: string
  tableSize: number
}

/** The targets of this run: E only when its hop was started (not with --no-node-hop). */
export function targetsOf(env: Env): TargetId[] {
  return ALL_TARGETS.filter((t) => t !== 'nodehop' || env.nodeHop)
}

export function endpoint(env: Env, target: TargetId): Endpoint {
  const port = proxyOf(env, target)?.port ?? env.db.port
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
  switch (target) {
    case 'gateway':
      return env.gateway
    case 'socat':
      return env.socat
    case 'nodehop':
      // A missing hop must fail the step, not silently measure MariaDB directly under E's label.
      if (!env.nodeHop) throw new Error('target E was skipped (--no-node-hop)')
      return env.nodeHop
    default:
      return undefined
  }
}
