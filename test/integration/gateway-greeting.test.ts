import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import mysql from 'mysql2/promise'
import * as mariadb from 'mariadb'
import { testEnv } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { routeConfig, startEngine, type RunningEngine } from '../helpers/engine.js'
import { CAP, CLIENT_CAPS, RawClient, decodeErr, greetingCaps, handshakeResponse, sslRequest, startRawBackend } from '../helpers/raw-mysql.js'
import { waitFor } from '../helpers/wait.js'

const env = testEnv()
const db = harnessMariaDb(env)
const ca = readFileSync(env.pki.caCert)
let gw: RunningEngine
let native: Account
let other: Account
let ed: Account

before(async () => {
  native = await createAccount(db, { user: 'gg_native' })
  other = await createAccount(db, { user: 'gg_other' })
  ed = await createAccount(db, { user: 'gg_ed', plugin: 'ed25519' })
  gw = await startEngine(routeConfig({ name: 'shielded', greeting: 'gateway' }), { greeting: 'gateway' })
})
after(async () => {
  await gw.close()
  await db.close()
})

async function currentUser(c: mysql.Connection): Promise<string> {
  const [[row]] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u')
  return String(row!.u).split('@')[0]!
}

describe('gateway-issued greeting on a single route (backend shielding)', () => {
  test('native account: mysql2 logs in through the single relayed auth switch', async () => {
    const c = await mysql.createConnection({ host: gw.host, port: gw.port, ...native, ssl: { ca } })
    try {
      assert.equal(await currentUser(c), native.user)
    } finally {
      await c.end()
    }
  })

  test('ed25519 account with the mariadb connector', async () => {
    const c = await mariadb.createConnection({ host: gw.host, port: gw.port, ...ed, ssl: { ca }, connectTimeout: 10_000 })
    try {
      const rows = await c.query('SELECT CURRENT_USER() AS u')
      assert.match(String(rows[0].u), new RegExp(`^${ed.user}@`))
    } finally {
      await c.end()
    }
  })

  test('wrong password gets the backend 1045', async () => {
    await assert.rejects(
      mysql.createConnection({ host: gw.host, port: gw.port, user: native.user, password: 'nope', ssl: { ca } }),
      (err: { errno?: number }) => err.errno === 1045
    )
  })

  test('COM_CHANGE_USER is rewritten so the backend switches once; good and bad passwords', async () => {
    const c = await mysql.createConnection({ host: gw.host, port: gw.port, ...native, ssl: { ca } })
    try {
      await c.changeUser({ user: other.user, password: other.password })
      assert.equal(await currentUser(c), other.user)
      await c.changeUser({ user: native.user, password: native.password })
      assert.equal(await currentUser(c), native.user)
      await assert.rejects(c.changeUser({ user: other.user, password: 'bad' }), (err: { errno?: number }) => err.errno === 1045)
    } finally {
      c.destroy()
    }
  })

  test('a scanner that connects and leaves opens no backend connection', async () => {
    // A backend of its own that counts connections: the shared harness server is busy with other test files.
    const counting = await startRawBackend()
    const shielded = await startEngine(
      routeConfig({ name: 'shield-count', greeting: 'gateway', backend: { host: '127.0.0.1', port: counting.port } }),
      { greeting: 'gateway' }
    )
    try {
      for (let i = 0; i < 5; i++) {
        await new Promise<void>((resolve) => {
          const s = net.connect(shielded.port, shielded.host, () => setTimeout(() => s.destroy(), 20))
          s.on('close', () => resolve())
          s.on('error', () => resolve())
        })
      }
      await waitFor(() => shielded.logs.filter((l) => l.msg === 'connection closed').length === 5, {
        timeoutMs: 5000,
        what: 'five closed lines',
      })
      assert.equal(counting.conns.length, 0, 'the backend saw no connection')
      // Control: the same engine does reach that backend once a client gets as far as a HandshakeResponse.
      await assert.rejects(mysql.createConnection({ host: shielded.host, port: shielded.port, ...native, ssl: { ca } }))
      assert.equal(counting.conns.length, 1)
    } finally {
      await shielded.close()
      await counting.close()
    }
  })

  test('a client asking for compression the greeting did not offer (PHP mysqlnd does) gets an ERR, not a hang', async () => {
    const CLIENT_COMPRESS = 0x20
    const counting = await startRawBackend()
    const shielded = await startEngine(
      routeConfig({ name: 'no-compress', greeting: 'gateway', backend: { host: '127.0.0.1', port: counting.port } }),
      { greeting: 'gateway' }
    )
    const client = await RawClient.connect(shielded.port)
    try {
      const greeting = await client.packet()
      assert.equal(greetingCaps(greeting.payload) & CLIENT_COMPRESS, 0, 'the greeting offers no compression')
      client.send(1, sslRequest(CLIENT_CAPS | CAP.SSL | CLIENT_COMPRESS))
      await client.startTls()
      client.send(2, handshakeResponse({ caps: CLIENT_CAPS | CAP.SSL | CLIENT_COMPRESS, user: native.user, auth: Buffer.alloc(20) }))
      const answer = await client.packet()
      assert.equal(answer.payload[0], 0xff, 'an ERR packet')
      assert.equal(answer.seq, 3)
      const err = decodeErr(answer.payload)
      assert.equal(err.code, 1105)
      assert.equal(err.sqlState, 'HY000')
      assert.match(err.message, /route no-compress: this listener does not offer protocol compression/)
      assert.equal(counting.conns.length, 0, 'no backend connection was opened for it')
    } finally {
      client.destroy()
      await shielded.close()
      await counting.close()
    }
  })
})
