/**
 * The command phase through a TLS-required transparent route (plain backend leg), with real drivers:
 * 20 MiB rows byte-identical (multi-frame packets), prepared statements, COM_CHANGE_USER, compression, LOAD DATA
 * LOCAL INFILE with > 256 packets (sequence ids wrap), COM_RESET_CONNECTION, KILL QUERY by the thread id the
 * client saw in the greeting, and a slow reader (backpressure all the way to the backend).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import mysql from 'mysql2/promise'
import * as mariadb from 'mariadb'
import { testEnv } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { routeConfig, startEngine, type RunningEngine } from '../helpers/engine.js'
import { waitFor } from '../helpers/wait.js'

const env = testEnv()
const db = harnessMariaDb(env)
const ca = readFileSync(env.pki.caCert)
const schema = `gwcmd_${randomBytes(4).toString('hex')}`
const BLOB_BYTES = 20 * 1024 * 1024
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
let blobHash: string
let gw: RunningEngine
let acc: Account
let other: Account

before(async () => {
  const blob = randomBytes(BLOB_BYTES)
  blobHash = sha256(blob)
  await db.query(`CREATE DATABASE ${schema}`)
  await db.query(`CREATE TABLE ${schema}.blobs (id INT PRIMARY KEY, b LONGBLOB NOT NULL)`)
  await db.query(`CREATE TABLE ${schema}.loaded (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL)`)
  await db.query(`INSERT INTO ${schema}.blobs VALUES (1, ?)`, [blob])
  // Three 20 MiB rows for the slow reader: far more than socket buffers can hide.
  await db.query(`INSERT INTO ${schema}.blobs SELECT 2, b FROM ${schema}.blobs WHERE id = 1`)
  await db.query(`INSERT INTO ${schema}.blobs SELECT 3, b FROM ${schema}.blobs WHERE id = 1`)
  ;[acc, other] = await Promise.all([
    createAccount(db, { user: 'cmd', grant: `ALL ON ${schema}.*` }),
    createAccount(db, { user: 'cmd_other', grant: `SELECT ON ${schema}.*` }),
  ])
  gw = await startEngine(routeConfig({ name: 'cmd' }))
})
after(async () => {
  await gw.close()
  await db.query(`DROP DATABASE IF EXISTS ${schema}`).catch(() => {})
  await db.close()
})

const connect = (extra: mysql.ConnectionOptions = {}) =>
  mysql.createConnection({ host: gw.host, port: gw.port, ...acc, database: schema, ssl: { ca }, ...extra })

async function firstRow(c: mysql.Connection, sql: string, params?: unknown[]): Promise<mysql.RowDataPacket> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(sql, params)
  return rows[0]!
}

describe('results and statements', () => {
  test('a 20 MiB row is byte-identical through the gateway and directly', async () => {
    const direct = await db.query<Array<{ h: string }>>(`SELECT SHA2(b, 256) AS h FROM ${schema}.blobs WHERE id = 1`)
    assert.equal(direct[0]!.h, blobHash, 'control: the stored blob is the one inserted')
    const c = await connect()
    try {
      const row = await firstRow(c, 'SELECT b FROM blobs WHERE id = 1')
      assert.ok(Buffer.isBuffer(row.b))
      assert.equal(row.b.length, BLOB_BYTES)
      assert.equal(sha256(row.b), blobHash)
    } finally {
      await c.end()
    }
  })

  test('prepared statements with parameters (mysql2 execute)', async () => {
    const c = await connect()
    try {
      const [rows] = await c.execute<mysql.RowDataPacket[]>('SELECT ? + ? AS s, CONCAT(?, ?) AS t, ? AS bin', [
        40,
        2,
        'héllo ',
        'wörld',
        Buffer.from([0, 1, 2, 0xff]),
      ])
      assert.equal(Number(rows[0]!.s), 42)
      assert.equal(rows[0]!.t, 'héllo wörld')
      assert.deepEqual(rows[0]!.bin, Buffer.from([0, 1, 2, 0xff]))
      // A big parameter (COM_STMT_EXECUTE of 5 MiB) and a big binary-protocol result.
      const param = randomBytes(5 * 1024 * 1024)
      const [echo] = await c.execute<mysql.RowDataPacket[]>('SELECT SHA2(?, 256) AS h, LENGTH(?) AS n', [param, param])
      assert.equal(echo[0]!.h, sha256(param))
      assert.equal(Number(echo[0]!.n), param.length)
      const [big] = await c.execute<mysql.RowDataPacket[]>('SELECT b FROM blobs WHERE id = ?', [1])
      assert.equal(sha256(big[0]!.b), blobHash)
    } finally {
      await c.end()
    }
  })

  test('compression (mysql2 compress: true) end to end with a 20 MiB result', async () => {
    const c = await connect({ compress: true })
    try {
      const status = await firstRow(c, "SHOW SESSION STATUS LIKE 'Compression'")
      assert.equal(status.Value, 'ON', 'the backend session is compressed')
      const row = await firstRow(c, 'SELECT b FROM blobs WHERE id = 1')
      assert.equal(sha256(row.b), blobHash)
      const [stmt] = await c.execute<mysql.RowDataPacket[]>('SELECT ? * 2 AS n', [21])
      assert.equal(Number(stmt[0]!.n), 42)
    } finally {
      await c.end()
    }
  })
})

describe('session commands', () => {
  test('COM_CHANGE_USER (mysql2 changeUser): good password switches, bad password gets 1045', async () => {
    const c = await connect()
    try {
      await c.changeUser({ user: other.user, password: other.password, database: schema })
      const me = await firstRow(c, 'SELECT CURRENT_USER() AS u')
      assert.match(String(me.u), new RegExp(`^${other.user}@`))
      const row = await firstRow(c, 'SELECT LENGTH(b) AS n FROM blobs WHERE id = 1')
      assert.equal(Number(row.n), BLOB_BYTES)
    } finally {
      await c.end()
    }
    const d = await connect()
    try {
      await assert.rejects(
        d.changeUser({ user: other.user, password: 'not-the-password' }),
        (err: { errno?: number; message: string }) => err.errno === 1045 && /Access denied/.test(err.message)
      )
    } finally {
      d.destroy()
    }
  })

  test('COM_RESET_CONNECTION: mysql2 reset() and the mariadb connector reset()', async () => {
    const c = await connect()
    try {
      await c.query('SET @kept = 5')
      assert.equal(Number((await firstRow(c, 'SELECT @kept AS v')).v), 5)
      await c.reset()
      assert.equal((await firstRow(c, 'SELECT @kept AS v')).v, null, 'user variable gone after reset')
      assert.equal(Number((await firstRow(c, 'SELECT 1 AS one')).one), 1)
    } finally {
      await c.end()
    }
    const m = await mariadb.createConnection({ connectTimeout: 10_000, host: gw.host, port: gw.port, ...acc, ssl: { ca } })
    try {
      await m.query('SET @kept = 7')
      await m.reset()
      assert.equal((await m.query('SELECT @kept AS v'))[0].v, null)
    } finally {
      await m.end()
    }
  })

  test('LOAD DATA LOCAL INFILE with 1000 packets (sequence ids wrap past 255)', async () => {
    const [{ on }] = await db.query<Array<{ on: number }>>('SELECT @@GLOBAL.local_infile AS `on`')
    // The server is this run's throwaway; left on because other files may load data concurrently.
    if (!Number(on)) await db.query('SET GLOBAL local_infile = 1')
    const PACKETS = 1000
    const ROWS_PER_PACKET = 20
    function* chunks(): Generator<Buffer> {
      for (let p = 0; p < PACKETS; p++) {
        let text = ''
        for (let r = 0; r < ROWS_PER_PACKET; r++) {
          const id = p * ROWS_PER_PACKET + r + 1
          text += `${id}\tvalue-${id}\n`
        }
        yield Buffer.from(text)
      }
    }
    let streamed = 0
    const c = await connect()
    try {
      const [res] = await c.query<mysql.ResultSetHeader>({
        sql: "LOAD DATA LOCAL INFILE 'rows.tsv' INTO TABLE loaded FIELDS TERMINATED BY '\\t' (id, v)",
        // mysql2 writes every stream chunk as its own packet.
        infileStreamFactory: () => Readable.from(chunks()).on('data', () => streamed++),
      })
      assert.equal(streamed, PACKETS)
      const total = PACKETS * ROWS_PER_PACKET
      assert.equal(res.affectedRows, total)
      const check = await firstRow(c, "SELECT COUNT(*) AS n, SUM(id) AS s, MAX(v) AS m FROM loaded WHERE v LIKE 'value-%'")
      assert.equal(Number(check.n), total)
      assert.equal(Number(check.s), (total * (total + 1)) / 2)
      // The connection is still in step after the upload.
      const [stmt] = await c.execute<mysql.RowDataPacket[]>('SELECT v FROM loaded WHERE id = ?', [total])
      assert.equal(stmt[0]!.v, `value-${total}`)
    } finally {
      await c.end()
    }
  })

  test('KILL QUERY <thread id from the greeting> on a second connection interrupts SELECT SLEEP(10)', async () => {
    const c1 = await connect()
    const c2 = await connect()
    try {
      const id = c1.threadId
      assert.equal(Number((await firstRow(c1, 'SELECT CONNECTION_ID() AS id')).id), id, 'thread id relayed unchanged')
      const started = Date.now()
      const sleeping = c1.query<mysql.RowDataPacket[]>('SELECT SLEEP(10) AS s').then(
        ([rows]) => ({ s: Number(rows[0]!.s) }),
        (err: { errno?: number }) => ({ errno: err.errno })
      )
      await waitFor(
        async () =>
          (
            await db.query<unknown[]>(
              "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE 'SELECT SLEEP%'",
              [id]
            )
          ).length > 0,
        { timeoutMs: 5000, what: 'the SLEEP to be running on the backend' }
      )
      await c2.query(`KILL QUERY ${id}`)
      const outcome = await withTimeout(sleeping, 15_000, 'the interrupted SLEEP')
      const elapsed = Date.now() - started
      assert.ok(elapsed < 8000, `SLEEP(10) was interrupted (took ${elapsed} ms)`)
      // MariaDB returns 1 from an interrupted SLEEP(), or ER_QUERY_INTERRUPTED.
      assert.ok('s' in outcome ? outcome.s === 1 : outcome.errno === 1317, JSON.stringify(outcome))
      assert.equal(Number((await firstRow(c1, 'SELECT 2 AS n')).n), 2, 'KILL QUERY leaves the connection usable')
    } finally {
      await c1.end()
      await c2.end()
    }
  })

  test('slow reader: a paused client stalls the backend (backpressure) and still gets every byte', async () => {
    const c = await connect()
    try {
      const id = c.threadId
      const stream = (c as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream
      const result = c.query<mysql.RowDataPacket[]>('SELECT id, b FROM blobs ORDER BY id')
      // Stop reading the TLS socket (mysql2's own pause() would hold the query back instead).
      stream.pause()
      result.catch(() => {})
      // 60 MiB cannot hide in socket buffers: had the gateway kept reading from the backend while the client
      // did not, the server would be done with the query within about a second (measured with the relay's
      // pause() removed) and show 'Sleep'. With backpressure it stays blocked writing for as long as we wait.
      const pausedUntil = Date.now() + 3000
      while (Date.now() < pausedUntil) {
        await sleep(250)
        const [state] = await db.query<Array<{ COMMAND: string; STATE: string }>>(
          'SELECT COMMAND, STATE FROM information_schema.PROCESSLIST WHERE ID = ?',
          [id]
        )
        assert.equal(state?.COMMAND, 'Query', `backend still sending while the client is paused (${JSON.stringify(state)})`)
      }
      stream.resume()
      const [rows] = await withTimeout(result, 30_000, 'the 60 MiB result after resume')
      assert.deepEqual(
        rows.map((r) => r.id),
        [1, 2, 3]
      )
      for (const r of rows) assert.equal(sha256(r.b), blobHash, `row ${r.id} intact`)
    } finally {
      c.destroy()
    }
  })
})

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([work, expired]).finally(() => clearTimeout(timer))
}
