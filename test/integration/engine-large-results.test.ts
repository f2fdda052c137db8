/**
 * Large results byte for byte. Reads from a plain backend leg share one buffer across every session of the
 * process (src/proxy/backend-reads.ts), so these cases are the ones that would corrupt data if a chunk were
 * used after the next read: several sessions interleaving, a client that stops reading (the gateway's writes
 * queue up), and a plain client leg (the kernel may keep a pointer to an unfinished write).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type tls from 'node:tls'
import mysql from 'mysql2/promise'
import { testEnv } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { routeConfig, startEngine, type RunningEngine } from '../helpers/engine.js'

const env = testEnv()
const db = harnessMariaDb(env)
const ca = readFileSync(env.pki.caCert)
let tlsRoute: RunningEngine
let plainRoute: RunningEngine
let account: Account

// 24 rows of 256-300 KiB, each with different content, and its SHA-256 as computed by the server.
const ROWS = 24
const QUERY = `WITH RECURSIVE s(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < ${ROWS})
SELECT seq, body, SHA2(body, 256) AS h FROM (
  SELECT seq, CONCAT(seq, ':', REPEAT(CHAR(65 + seq % 26, 97 + seq % 23), 131072 + seq * 977)) AS body FROM s
) t ORDER BY seq`

type Row = { seq: number; body: string; h: string }

function checkRows(rows: Row[], label: string): void {
  assert.equal(rows.length, ROWS, `${label}: row count`)
  for (const r of rows) {
    assert.equal(createHash('sha256').update(r.body).digest('hex'), r.h, `${label}: row ${r.seq} arrived intact`)
  }
}

function streamOf(c: mysql.Connection): tls.TLSSocket {
  return (c as unknown as { connection: { stream: tls.TLSSocket } }).connection.stream
}

before(async () => {
  account = await createAccount(db, { user: 'large_results' })
  tlsRoute = await startEngine(routeConfig({ name: 'large-tls' }))
  plainRoute = await startEngine(routeConfig({ name: 'large-plain', tls: { mode: 'preferred' } }))
})
after(async () => {
  await tlsRoute.close()
  await plainRoute.close()
  await db.close()
})

const connect = (gw: RunningEngine, ssl: boolean) =>
  mysql.createConnection({
    host: gw.host,
    port: gw.port,
    user: account.user,
    password: account.password,
    ssl: ssl ? { ca } : undefined,
    connectTimeout: 5_000,
  })

test('four TLS sessions reading large results at the same time each get their own bytes', async () => {
  const conns = await Promise.all([0, 1, 2, 3].map(() => connect(tlsRoute, true)))
  try {
    const results = await Promise.all(conns.map((c) => c.query({ sql: QUERY, timeout: 30_000 })))
    results.forEach(([rows], i) => checkRows(rows as Row[], `session ${i}`))
  } finally {
    await Promise.all(conns.map((c) => c.end()))
  }
})

test('a TLS client that stops reading mid-result still gets every byte once it reads again', async () => {
  const c = await connect(tlsRoute, true)
  try {
    const stream = streamOf(c)
    const pending = c.query({ sql: QUERY, timeout: 30_000 })
    // Stop reading as soon as the result starts: the gateway's TLS writes queue, then it stops the backend.
    await new Promise<void>((resolve) => stream.once('data', () => resolve()))
    stream.pause()
    await new Promise((r) => setTimeout(r, 400))
    stream.resume()
    const [rows] = await pending
    checkRows(rows as Row[], 'paused client')
  } finally {
    await c.end()
  }
})

test('a plaintext client leg (tls.mode preferred) gets large results intact, also while paused', async () => {
  const conns = await Promise.all([0, 1].map(() => connect(plainRoute, false)))
  try {
    const stream = streamOf(conns[0]!)
    const pending = conns.map((c) => c.query({ sql: QUERY, timeout: 30_000 }))
    await new Promise<void>((resolve) => stream.once('data', () => resolve()))
    stream.pause()
    await new Promise((r) => setTimeout(r, 400))
    stream.resume()
    const results = await Promise.all(pending)
    results.forEach(([rows], i) => checkRows(rows as Row[], `plain session ${i}`))
  } finally {
    await Promise.all(conns.map((c) => c.end()))
  }
})
