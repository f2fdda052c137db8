/**
 * Client-facing TLS policy through the engine with real clients: tls.mode preferred and disabled (required is
 * in engine-basics), the CLIENT_SSL bit of the relayed greeting (byte-exact, against a tiny raw backend built
 * from bytes), and mutual TLS (tls.clientCA) accept/reject with nothing sent to the backend on a reject.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import mysql from 'mysql2/promise'
import * as mariadb from 'mariadb'
import { testEnv } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { mintLeaf, type Leaf } from '../helpers/certs.js'
import { runMariadbCli } from '../helpers/cli.js'
import { routeConfig, startEngine, type RunningEngine } from '../helpers/engine.js'
import { bytes, diffIndexes, frame, int2, int4, nul, zeros } from '../helpers/packets.js'
import { waitFor } from '../helpers/wait.js'

const env = testEnv()
const db = harnessMariaDb(env)
const ca = readFileSync(env.pki.caCert)
const CLIENT_SSL = 0x0800
let native: Account
let ed: Account
const engines: RunningEngine[] = []
const servers: net.Server[] = []

async function engine(overrides: Parameters<typeof routeConfig>[0]): Promise<RunningEngine> {
  const gw = await startEngine(routeConfig(overrides))
  engines.push(gw)
  return gw
}

before(async () => {
  ;[native, ed] = await Promise.all([
    createAccount(db, { user: 'pol' }),
    createAccount(db, { user: 'poled', plugin: 'ed25519' }),
  ])
})
after(async () => {
  for (const gw of engines) await gw.close()
  for (const s of servers) s.close()
  await db.close()
})

/** The client's underlying socket as mysql2 holds it (a TLSSocket once TLS is up). */
function mysql2Stream(c: mysql.Connection): net.Socket {
  return (c as unknown as { connection: { stream: net.Socket } }).connection.stream
}

/** Reads the first packet a server sends on a fresh raw TCP connection; returns [seq, payload]. */
function readFirstPacket(port: number, timeoutMs = 5000): Promise<{ seq: number; payload: Buffer; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port })
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`no complete first packet within ${timeoutMs} ms (have ${buf.length} bytes)`))
    }, timeoutMs)
    s.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      if (buf.length < 4) return
      const len = buf.readUIntLE(0, 3)
      if (buf.length < 4 + len) return
      clearTimeout(timer)
      s.destroy()
      resolve({ seq: buf[3]!, payload: buf.subarray(4, 4 + len), raw: buf.subarray(0, 4 + len) })
    })
    s.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

const lowCapsOffset = (greeting: Buffer): number => greeting.indexOf(0, 1) + 14
const lowCaps = (greeting: Buffer): number => greeting.readUInt16LE(lowCapsOffset(greeting))

/**
 * A HandshakeV10 built from bytes, MySQL style (CLIENT_LONG_PASSWORD set, so no MariaDB extended caps),
 * native password; CLIENT_SSL only if asked.
 */
function fakeGreeting(withSsl: boolean): Buffer {
  const caps =
    0x00000001 | // LONG_PASSWORD
    0x00000004 | // LONG_FLAG
    0x00000008 | // CONNECT_WITH_DB
    0x00000200 | // PROTOCOL_41
    0x00002000 | // TRANSACTIONS
    0x00008000 | // SECURE_CONNECTION
    0x00020000 | // MULTI_RESULTS
    0x00080000 | // PLUGIN_AUTH
    0x00100000 | // CONNECT_ATTRS
    0x00200000 | // PLUGIN_AUTH_LENENC_CLIENT_DATA
    (withSsl ? CLIENT_SSL : 0)
  return bytes(
    [0x0a],
    nul('5.5.5-10.11.99-FakeBackend'),
    int4(0x01020304),
    Buffer.from('Scr4mb1e'),
    [0x00],
    int2(caps & 0xffff),
    [45],
    int2(0x0002),
    int2(caps >>> 16),
    [21],
    zeros(10),
    Buffer.from('Part2Scrambl'),
    [0x00],
    nul('mysql_native_password')
  )
}

interface FakeBackend {
  port: number
  greeting: Buffer
  /** First packet each connection received (the HandshakeResponse relayed by the gateway): [seq, payload]. */
  received: Array<{ seq: number; payload: Buffer }>
}

/** A raw TCP "server": sends the greeting, answers the first packet with ERR 1045, closes. */
async function fakeBackend(withSsl: boolean): Promise<FakeBackend> {
  const greeting = fakeGreeting(withSsl)
  const received: FakeBackend['received'] = []
  const server = net.createServer((s) => {
    s.on('error', () => {})
    s.write(frame(0, greeting))
    let buf = Buffer.alloc(0)
    s.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      if (buf.length < 4 || buf.length < 4 + buf.readUIntLE(0, 3)) return
      const len = buf.readUIntLE(0, 3)
      received.push({ seq: buf[3]!, payload: Buffer.from(buf.subarray(4, 4 + len)) })
      const err = bytes([0xff], int2(1045), Buffer.from('#28000fake backend: access denied'))
      s.end(frame(buf[3]! + 1, err))
      buf = Buffer.alloc(0)
    })
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, greeting, received }
}

describe('tls.mode preferred', () => {
  let gw: RunningEngine
  before(async () => {
    gw = await engine({ name: 'pref', tls: { mode: 'preferred' } })
  })

  test('mysql2 with ssl is on TLS; mysql2 without ssl works in plaintext', async () => {
    const secure = await mysql.createConnection({ host: gw.host, port: gw.port, ...native, ssl: { ca } })
    try {
      const stream = mysql2Stream(secure)
      assert.ok(stream instanceof tls.TLSSocket, 'client socket is a TLSSocket')
      assert.match((stream as tls.TLSSocket).getCipher().version, /^TLSv1\.[23]$/)
      const [[row]] = await secure.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u')
      assert.match(String(row!.u), new RegExp(`^${native.user}@`))
    } finally {
      await secure.end()
    }
    const plain = await mysql.createConnection({ host: gw.host, port: gw.port, ...native })
    try {
      assert.ok(!(mysql2Stream(plain) instanceof tls.TLSSocket), 'no TLS when the client does not ask')
      const [[row]] = await plain.query<mysql.RowDataPacket[]>('SELECT 41 + 1 AS n')
      assert.equal(Number(row!.n), 42)
    } finally {
      await plain.end()
    }
  })

  test('the mariadb CLI with --ssl shows a cipher; with --skip-ssl it logs in plain', async () => {
    const base = ['-h127.0.0.1', '-P', String(gw.port), '-u', ed.user]
    const tlsArgs = ['--ssl', `--ssl-ca=${env.pki.caCert}`]
    const secure = await runMariadbCli([...base, ...tlsArgs, '-e', 'status'], { password: ed.password })
    assert.equal(secure.code, 0, secure.stderr)
    assert.match(secure.stdout, /SSL:\s+Cipher in use is \S+/)
    const plain = await runMariadbCli([...base, '--skip-ssl', '-e', 'status'], { password: ed.password })
    assert.equal(plain.code, 0, plain.stderr)
    assert.match(plain.stdout, /SSL:\s+Not in use/)
  })

  test('the mariadb connector logs in with and without TLS', async () => {
    // Sessions accepted from now on have larger connection ids than any logged so far.
    const mark = Math.max(0, ...gw.logs.map((l) => Number(l.conn) || 0))
    for (const ssl of [{ ca }, undefined]) {
      const opts = { connectTimeout: 10_000, host: gw.host, port: gw.port, ...ed }
      const c = await mariadb.createConnection(ssl ? { ...opts, ssl } : opts)
      try {
        const rows = await c.query('SELECT 2 * 3 AS six')
        assert.equal(Number(rows[0].six), 6)
      } finally {
        await c.end()
      }
    }
    const closed = await waitFor(
      () => {
        const lines = gw.logs.filter(
          (l) => l.msg === 'connection closed' && l.user === ed.user && l.outcome === 'ok' && Number(l.conn) > mark
        )
        return lines.length >= 2 ? lines : undefined
      },
      { timeoutMs: 3000, what: 'two closed lines for the mariadb connector' }
    )
    assert.ok(closed.some((l) => typeof l.tls === 'string' && /^TLSv1\.[23]$/.test(l.tls)), 'one session on TLS')
    assert.ok(closed.some((l) => l.tls === undefined), 'one session in plaintext')
  })

  test('the relayed greeting sets CLIENT_SSL for a backend without TLS and changes nothing else', async () => {
    const fake = await fakeBackend(false)
    const backend = { host: '127.0.0.1', port: fake.port }
    const gwFake = await engine({ name: 'pref-fake', tls: { mode: 'preferred' }, backend })
    const { seq, payload } = await readFirstPacket(gwFake.port)
    assert.equal(seq, 0)
    assert.equal(payload.length, fake.greeting.length)
    const at = lowCapsOffset(fake.greeting) + 1 // CLIENT_SSL is bit 3 of the second low-capability byte
    assert.deepEqual(diffIndexes(payload, fake.greeting), [at])
    assert.equal(payload[at]! ^ fake.greeting[at]!, 0x08)
    assert.ok(lowCaps(payload) & CLIENT_SSL)
  })

  test('mysql2 with ssl really goes to TLS in front of that backend, which gets CLIENT_SSL cleared', async () => {
    const fake = await fakeBackend(false)
    const backend = { host: '127.0.0.1', port: fake.port }
    const gwFake = await engine({ name: 'pref-fake2', tls: { mode: 'preferred' }, backend })
    // Without CLIENT_SSL in the greeting mysql2 would fail at once with HANDSHAKE_NO_SSL_SUPPORT.
    await assert.rejects(
      mysql.createConnection({ host: gwFake.host, port: gwFake.port, user: 'someone', password: 'pw', ssl: { ca } }),
      (err: { errno?: number; message: string }) => err.errno === 1045 && /fake backend: access denied/.test(err.message)
    )
    assert.equal(fake.received.length, 1)
    const hr = fake.received[0]!
    assert.equal(hr.seq, 1, 'HandshakeResponse renumbered to seq 1 for the plain backend')
    assert.equal(hr.payload.readUInt32LE(0) & CLIENT_SSL, 0, 'CLIENT_SSL cleared towards a plain backend')
    assert.equal(hr.payload.subarray(32, hr.payload.indexOf(0, 32)).toString(), 'someone')
    const closed = await waitFor(() => gwFake.logs.find((l) => l.msg === 'connection closed'), {
      timeoutMs: 3000,
      what: 'closed line',
    })
    assert.match(String(closed.tls), /^TLSv1\.[23]$/)
    assert.equal(closed.outcome, 'auth_failed')
    assert.equal(closed.errorCode, 1045)
  })
})

describe('tls.mode disabled', () => {
  let gw: RunningEngine
  before(async () => {
    gw = await engine({ name: 'off', tls: { mode: 'disabled', cert: undefined, key: undefined } })
  })

  test('plain clients work (mysql2, mariadb connector, CLI)', async () => {
    const c = await mysql.createConnection({ host: gw.host, port: gw.port, ...native })
    try {
      assert.ok(!(mysql2Stream(c) instanceof tls.TLSSocket))
      const [[row]] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u')
      assert.match(String(row!.u), new RegExp(`^${native.user}@`))
    } finally {
      await c.end()
    }
    const m = await mariadb.createConnection({ connectTimeout: 10_000, host: gw.host, port: gw.port, ...ed })
    try {
      assert.equal(Number((await m.query('SELECT 7 AS n'))[0].n), 7)
    } finally {
      await m.end()
    }
    const cli = await runMariadbCli(['-h127.0.0.1', '-P', String(gw.port), '-u', native.user, '-e', 'status'], {
      password: native.password,
    })
    assert.equal(cli.code, 0, cli.stderr)
    assert.match(cli.stdout, /SSL:\s+Not in use/)
  })

  test('the relayed greeting has CLIENT_SSL cleared although the harness backend offers it', async () => {
    const direct = await readFirstPacket(env.mariadb.port)
    assert.ok(lowCaps(direct.payload) & CLIENT_SSL, 'the harness MariaDB offers TLS')
    const through = await readFirstPacket(gw.port)
    assert.equal(through.seq, 0)
    assert.equal(lowCaps(through.payload), lowCaps(direct.payload) & ~CLIENT_SSL)
    // Byte-exact against a fixed greeting: only that one bit differs.
    const fake = await fakeBackend(true)
    const gwFake = await engine({
      name: 'off-fake',
      tls: { mode: 'disabled', cert: undefined, key: undefined },
      backend: { host: '127.0.0.1', port: fake.port },
    })
    const relayed = await readFirstPacket(gwFake.port)
    const at = lowCapsOffset(fake.greeting) + 1
    assert.deepEqual(diffIndexes(relayed.payload, fake.greeting), [at])
    assert.equal(lowCaps(relayed.payload) & CLIENT_SSL, 0)
  })

  test('clients that require TLS refuse to log in', async () => {
    await assert.rejects(
      mysql.createConnection({ host: gw.host, port: gw.port, ...native, ssl: { ca } }),
      (err: { code?: string }) => err.code === 'HANDSHAKE_NO_SSL_SUPPORT'
    )
    const cli = await runMariadbCli(
      ['-h127.0.0.1', '-P', String(gw.port), '-u', native.user, '--ssl', `--ssl-ca=${env.pki.caCert}`, '--ssl-verify-server-cert']
        .concat(['-e', 'SELECT 1']),
      { password: native.password }
    )
    assert.notEqual(cli.code, 0, `CLI must fail, got: ${cli.stdout}`)
    assert.match(cli.stderr, /SSL/i)
  })
})

describe('mutual TLS (tls.clientCA)', () => {
  let gw: RunningEngine
  let good: Leaf
  let foreign: Leaf
  before(async () => {
    ;[good, foreign] = await Promise.all([
      mintLeaf(env.pki, 'client', { client: true }),
      mintLeaf(env.pki, 'client-other', { client: true, signer: 'other' }),
    ])
    gw = await engine({ name: 'mtls', tls: { clientCA: env.pki.caCert } })
  })

  /** Runs a connection attempt and returns the log lines of the one new session it made. */
  async function session(attempt: () => Promise<void>): Promise<Array<Record<string, unknown>>> {
    const known = new Set(gw.logs.map((l) => l.conn))
    await attempt()
    const closed = await waitFor(() => gw.logs.find((l) => l.msg === 'connection closed' && !known.has(l.conn)), {
      timeoutMs: 5000,
      what: 'the closed line of the new session',
    })
    return gw.logs.filter((l) => l.conn === closed.conn)
  }

  test('a client certificate from the trusted CA is accepted', async () => {
    const lines = await session(async () => {
      const c = await mysql.createConnection({
        host: gw.host,
        port: gw.port,
        ...native,
        ssl: { ca, cert: readFileSync(good.cert), key: readFileSync(good.key) },
      })
      try {
        const [[row]] = await c.query<mysql.RowDataPacket[]>('SELECT 1 AS one')
        assert.equal(Number(row!.one), 1)
      } finally {
        await c.end()
      }
    })
    const established = lines.find((l) => l.msg === 'tls established')
    assert.ok(established, 'tls established line')
    assert.match(String(established.clientCert), /CN=client/)
    assert.ok(lines.some((l) => l.msg === 'authenticated'))
    assert.equal(lines.find((l) => l.msg === 'connection closed')!.outcome, 'ok')
  })

  for (const [name, cert] of [
    ['no client certificate', () => undefined],
    ['a certificate from another CA', () => foreign],
  ] as const) {
    test(`${name}: rejected at TLS, the backend never sees a HandshakeResponse`, async () => {
      const leaf = cert()
      const lines = await session(async () => {
        await assert.rejects(
          mysql.createConnection({
            host: gw.host,
            port: gw.port,
            ...native,
            connectTimeout: 5000,
            ssl: { ca, ...(leaf ? { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) } : {}) },
          }),
          (err: { errno?: number; code?: string; message: string }) => {
            // Whatever the client reports, it must not be a login that reached the server.
            assert.notEqual(err.errno, 1045, err.message)
            return true
          }
        )
      })
      const closed = lines.find((l) => l.msg === 'connection closed')!
      assert.equal(closed.outcome, 'tls_failed', JSON.stringify(closed))
      assert.equal(closed.user, undefined, 'no HandshakeResponse was read')
      assert.ok(!lines.some((l) => l.msg === 'authenticated'))
    })
  }

  test('the CLI with the trusted client certificate gets in; without it, it does not', async () => {
    const base = ['-h127.0.0.1', '-P', String(gw.port), '-u', native.user, '--ssl', `--ssl-ca=${env.pki.caCert}`]
    const ok = await runMariadbCli([...base, `--ssl-cert=${good.cert}`, `--ssl-key=${good.key}`, '-e', 'status'], {
      password: native.password,
    })
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /SSL:\s+Cipher in use is \S+/)
    const bad = await runMariadbCli([...base, '-e', 'SELECT 1'], { password: native.password })
    assert.notEqual(bad.code, 0)
    assert.doesNotMatch(bad.stderr, /1045/)
  })
})
