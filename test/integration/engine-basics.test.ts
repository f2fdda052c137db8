import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import mysql from 'mysql2/promise'
import * as mariadb from 'mariadb'
import { testEnv } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { routeConfig, startEngine, type RunningEngine } from '../helpers/engine.js'

const execFileAsync = promisify(execFile)
const env = testEnv()
const db = harnessMariaDb(env)
const ca = readFileSync(env.pki.caCert)
let gw: RunningEngine
let native: Account
let ed: Account

before(async () => {
  native = await createAccount(db, { user: 'basic' })
  ed = await createAccount(db, { user: 'ed', plugin: 'ed25519' })
  gw = await startEngine(routeConfig({ name: 'basics' }))
})
after(async () => {
  await gw.close()
  await db.close()
})

describe('transparent route, TLS required', () => {
  test('mysql2 logs in over TLS and the backend leg is plain', async () => {
    const c = await mysql.createConnection({ host: gw.host, port: gw.port, ...native, ssl: { ca } })
    try {
      const stream = (c as unknown as { connection: { stream: import("node:tls").TLSSocket } }).connection.stream
      const cipher = stream.getCipher()
      assert.match(cipher.version, /^TLSv1\.[23]$/)
      const [rows] = await c.query<mysql.RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
      assert.equal(rows[0]!.Value, '', 'backend leg must be plain in this route')
      const [[me]] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u')
      assert.match(String(me!.u), new RegExp(`^${native.user}@`))
    } finally {
      await c.end()
    }
  })

  test('wrong password: the backend 1045 reaches the client', async () => {
    await assert.rejects(
      mysql.createConnection({ host: gw.host, port: gw.port, user: native.user, password: 'wrong', ssl: { ca } }),
      (err: { errno?: number; sqlState?: string }) => err.errno === 1045 && err.sqlState === '28000'
    )
  })

  test('ed25519 account through the auth switch (mariadb connector)', async () => {
    const c = await mariadb.createConnection({ host: gw.host, port: gw.port, ...ed, ssl: { ca }, connectTimeout: 10_000 })
    try {
      const rows = await c.query('SELECT 1 + 1 AS two')
      assert.equal(Number(rows[0].two), 2)
    } finally {
      await c.end()
    }
  })

  test('plaintext client gets 3159 and its credentials never reach the backend', async () => {
    const before = Number(await db.statusVar('Connections'))
    await assert.rejects(
      mysql.createConnection({ host: gw.host, port: gw.port, ...native }),
      (err: { errno?: number; sqlState?: string; message: string }) =>
        err.errno === 3159 && err.sqlState === 'HY000' && /insecure transport/.test(err.message)
    )
    const closed = gw.logs.find((l) => l.outcome === 'rejected_insecure')
    assert.ok(closed, 'a closed line with outcome rejected_insecure')
    assert.ok(Number(await db.statusVar('Connections')) >= before)
  })

  test('TCP keepalive is on for the accepted client socket (tcpKeepAlive defaults to true)', async () => {
    const c = await mysql.createConnection({ host: gw.host, port: gw.port, ...native, ssl: { ca } })
    try {
      // `ss -o` shows a keepalive timer only on sockets with SO_KEEPALIVE set.
      const { stdout } = await execFileAsync('ss', ['-tnoH', 'state', 'established', `( sport = :${gw.port} )`], { timeout: 5000 })
      assert.match(stdout, /timer:\(keepalive/, stdout)
    } finally {
      await c.end()
    }
  })
})
