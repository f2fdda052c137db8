/** mysql2 clients through the gateway over TLS, trusting the harness CA. */
import { readFileSync } from 'node:fs'
import type { TLSSocket } from 'node:tls'
import mysql from 'mysql2/promise'
import type { TestEnv } from '../../helpers/env.js'
import type { Account } from '../../helpers/mariadb.js'

export type Conn = mysql.Connection

/** Per-query deadline (mysql2 destroys the connection when it passes), so a hung gateway fails the test. */
const QUERY_TIMEOUT_MS = 10_000

export function connectTls(env: TestEnv, port: number, account: Account, ca?: Buffer): Promise<Conn> {
  return mysql.createConnection({
    host: '127.0.0.1',
    port,
    user: account.user,
    password: account.password,
    ssl: { ca: ca ?? readFileSync(env.pki.caCert) },
    connectTimeout: 5_000,
  })
}

/** Connect, run one query, disconnect; resolves with the value of `SELECT <n>`. */
export async function queryOnce(env: TestEnv, port: number, account: Account, n = 1): Promise<number> {
  const c = await connectTls(env, port, account)
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>({ sql: `SELECT ${Number(n)} AS n`, timeout: QUERY_TIMEOUT_MS })
    return Number(rows[0]!.n)
  } finally {
    await c.end().catch(() => {})
  }
}

/** sha256 fingerprint of the certificate the gateway presented on this connection. */
export function peerFingerprint(c: Conn): string {
  const stream = (c as unknown as { connection: { stream: TLSSocket } }).connection.stream
  return stream.getPeerCertificate().fingerprint256
}

/**
 * Runs queries until stop(): one persistent connection querying back to back, and a loop that opens a new
 * connection for every query. Records every failure, so a test can assert there was none.
 */
export function trafficLoop(env: TestEnv, port: number, account: Account) {
  const failures: string[] = []
  let persistentQueries = 0
  let newConnections = 0
  let running = true
  const persistent = (async () => {
    const c = await connectTls(env, port, account)
    try {
      while (running) {
        try {
          const [rows] = await c.query<mysql.RowDataPacket[]>({ sql: 'SELECT CONNECTION_ID() AS id', timeout: QUERY_TIMEOUT_MS })
          if (!rows[0]?.id) failures.push('persistent: empty result')
          persistentQueries++
        } catch (err) {
          failures.push(`persistent: ${(err as Error).message}`)
          return
        }
      }
    } finally {
      await c.end().catch(() => {})
    }
  })().catch((err: unknown) => failures.push(`persistent connect: ${(err as Error).message}`))
  const fresh = (async () => {
    while (running) {
      try {
        if ((await queryOnce(env, port, account, 7)) !== 7) failures.push('fresh: wrong result')
        newConnections++
      } catch (err) {
        failures.push(`fresh: ${(err as Error).message}`)
      }
    }
  })()
  return {
    failures,
    get counts() {
      return { persistentQueries, newConnections }
    },
    async stop() {
      running = false
      await Promise.all([persistent, fresh])
    },
  }
}
