/**
 * TLS entry, framing and first-packet policy with raw sockets (notes §1, §3, §5, §9.2 and §9.5-7): packets in
 * arbitrary pieces, the ClientHello in the SSLRequest's segment, malformed first packets, plaintext clients on a
 * TLS-required route, handshake responses over 255 bytes and over the route's size cap. Packets are built with
 * ./helpers/packets.ts via ./helpers/raw-mysql.ts; logins against the harness MariaDB use mysql_native_password
 * computed here against the relayed greeting's scramble.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Duplex } from 'node:stream'
import mysql from 'mysql2/promise'
import { testEnv } from '../helpers/env.js'
import { harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { routeConfig, startEngine, type RouteOverrides, type RunningEngine } from '../helpers/engine.js'
import { frame } from '../helpers/packets.js'
import {
  CAP,
  CLIENT_CAPS,
  RawClient,
  decodeErr,
  delay,
  greetingCaps,
  greetingScramble,
  handshakeResponse,
  nativeToken,
  rawQueryScalar,
  sslRequest,
  startRawBackend,
  type RawBackend,
} from '../helpers/raw-mysql.js'
import { waitFor } from '../helpers/wait.js'

const env = testEnv()
const db = harnessMariaDb(env)
const ca = readFileSync(env.pki.caCert)
const engines: RunningEngine[] = []
const backends: RawBackend[] = []
let gw: RunningEngine
let longUser: Account

/** 40 attributes of ~40 bytes each: the HandshakeResponse is ~1.8 KB, its attribute block needs a 3-byte lenenc. */
const ATTRS: Array<[string, string]> = Array.from({ length: 40 }, (_, i) => [`attr_key_${i}`, `value-${i}-${'x'.repeat(24)}`])

before(async () => {
  // 64 characters: a long user name makes the fixed part of the response long too.
  longUser = { user: `fr_${randomBytes(8).toString('hex')}_${'u'.repeat(44)}`, password: randomBytes(12).toString('base64url') }
  await db.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [longUser.user, longUser.password])
  gw = await engine({ name: 'framing' })
})
after(async () => {
  for (const e of engines) await e.close()
  for (const b of backends) await b.close()
  await db.close()
})

async function engine(overrides: RouteOverrides): Promise<RunningEngine> {
  const e = await startEngine(routeConfig(overrides))
  engines.push(e)
  return e
}

async function rawBackend(): Promise<RawBackend> {
  const b = await startRawBackend({ greeting: 'normal' })
  backends.push(b)
  return b
}

/** Reads the final auth packet and checks it is an OK at `seq`, then that the session really is the account's. */
async function expectLoggedIn(client: RawClient, seq: number, user: string): Promise<void> {
  const final = await client.packet()
  assert.equal(final.payload[0], 0x00, `expected OK, got ${final.payload.toString('hex')}`)
  assert.equal(final.seq, seq)
  assert.equal((await rawQueryScalar(client, 'SELECT CURRENT_USER()'))?.split('@')[0], user)
}

/** Asserts the next packet is an ERR with this code/SQLSTATE at `seq`, and that the gateway then closes. */
async function expectErr(client: RawClient, code: number, sqlState: string, seq: number): Promise<string> {
  const p = await client.packet()
  const err = decodeErr(p.payload)
  assert.deepEqual({ code: err.code, sqlState: err.sqlState, seq: p.seq }, { code, sqlState, seq }, err.message)
  assert.ok(await client.closedWithin(5000), 'the gateway closes after the ERR')
  return err.message
}

describe('SSLRequest arriving in pieces or together with the ClientHello', () => {
  test('SSLRequest in 1-byte writes, then TLS and a native login', async () => {
    const client = await RawClient.connect(gw.port)
    const scramble = greetingScramble((await client.packet()).payload)
    await client.writeSlowly(frame(1, sslRequest()), 1, 3)
    const secure = await client.startTls()
    assert.match(secure.getProtocol() ?? '', /^TLSv1\.[23]$/)
    client.send(2, handshakeResponse({ caps: CLIENT_CAPS | CAP.SSL, user: longUser.user, auth: nativeToken(longUser.password, scramble) }))
    await expectLoggedIn(client, 3, longUser.user)
    client.destroy()
  })

  test('SSLRequest and ClientHello in one write: the leftover bytes reach TLS', async () => {
    const client = await RawClient.connect(gw.port)
    const scramble = greetingScramble((await client.packet()).payload)
    await client.startTls({ prefix: frame(1, sslRequest()) })
    client.send(2, handshakeResponse({ caps: CLIENT_CAPS | CAP.SSL, user: longUser.user, auth: nativeToken(longUser.password, scramble) }))
    await expectLoggedIn(client, 3, longUser.user)
    client.destroy()
  })
})

describe('malformed first packets', () => {
  test('32-byte packet without CLIENT_SSL: 1043 08S01 at seq 2', async () => {
    const client = await RawClient.connect(gw.port)
    await client.packet()
    client.send(1, sslRequest(CLIENT_CAPS))
    assert.match(await expectErr(client, 1043, '08S01', 2), /Bad handshake/)
  })

  test('HandshakeResponse (> 32 bytes) claiming CLIENT_SSL in plaintext: 1043 at seq 2', async () => {
    const client = await RawClient.connect(gw.port)
    await client.packet()
    client.send(1, handshakeResponse({ caps: CLIENT_CAPS | CAP.SSL, user: 'x', auth: Buffer.alloc(20, 1) }))
    await expectErr(client, 1043, '08S01', 2)
  })

  test('packet shorter than 32 bytes: 1043 at seq 2', async () => {
    const client = await RawClient.connect(gw.port)
    await client.packet()
    client.send(1, Buffer.alloc(10))
    await expectErr(client, 1043, '08S01', 2)
  })

  test('a second SSLRequest inside TLS instead of the HandshakeResponse: 1043 at seq 3, delivered over TLS', async () => {
    const client = await RawClient.connect(gw.port)
    await client.packet()
    client.send(1, sslRequest())
    await client.startTls()
    client.send(2, sslRequest())
    await expectErr(client, 1043, '08S01', 3)
  })

  for (const seq of [0, 2, 5]) {
    test(`first packet with seq ${seq} instead of 1: an ERR (1043/1156), never a hang`, async () => {
      const client = await RawClient.connect(gw.port)
      await client.packet()
      client.send(seq, sslRequest())
      const p = await client.packet()
      const err = decodeErr(p.payload)
      assert.ok([1043, 1156].includes(err.code), `code ${err.code}: ${err.message}`)
      assert.equal(err.sqlState, '08S01')
      assert.ok(await client.closedWithin(5000))
    })
  }
})

describe('TLS required, plaintext client', () => {
  test('plain HandshakeResponse: 3159 HY000 at seq 2 and the backend never receives the user name', async () => {
    const backend = await rawBackend()
    const e = await engine({ name: 'plain-refused', backend: { host: '127.0.0.1', port: backend.port } })
    const client = await RawClient.connect(e.port)
    const greeting = await client.packet()
    assert.ok(greetingCaps(greeting.payload) & CAP.SSL, 'CLIENT_SSL added to the relayed greeting')
    const user = `secret_user_${randomBytes(4).toString('hex')}`
    client.send(1, handshakeResponse({ user, auth: nativeToken('pw', greetingScramble(greeting.payload)) }))
    assert.match(await expectErr(client, 3159, 'HY000', 2), /insecure transport/)
    await waitFor(() => backend.conns[0]?.closed, { timeoutMs: 5000, what: 'backend leg closed' })
    assert.equal(backend.conns[0]!.received.length, 0, `backend received ${backend.conns[0]!.received.toString('hex')}`)
    assert.equal((await waitFor(() => e.logs.find((l) => l.msg === 'connection closed'), { timeoutMs: 5000, what: 'closed line' })).outcome, 'rejected_insecure')
  })
})

describe('handshake responses over 255 bytes', () => {
  const bigResponse = (scramble: Buffer) =>
    handshakeResponse({
      caps: CLIENT_CAPS | CAP.SSL,
      user: longUser.user,
      auth: nativeToken(longUser.password, scramble),
      database: 'information_schema',
      attrs: ATTRS,
    })

  test('~1.8 KB response in 3-byte TLS records (header split too) logs in end to end', async () => {
    const client = await RawClient.connect(gw.port)
    const scramble = greetingScramble((await client.packet()).payload)
    client.send(1, sslRequest())
    await client.startTls()
    const hr = bigResponse(scramble)
    assert.ok(hr.length > 1500, `response is ${hr.length} bytes`)
    await client.writeSlowly(frame(2, hr), 3, 1)
    await expectLoggedIn(client, 3, longUser.user)
    assert.equal(await rawQueryScalar(client, 'SELECT DATABASE()'), 'information_schema')
    client.destroy()
  })

  test('the backend receives that response as one frame, seq 1, byte-identical except CLIENT_SSL', async () => {
    const backend = await rawBackend()
    const e = await engine({ name: 'hr-copy', backend: { host: '127.0.0.1', port: backend.port } })
    const client = await RawClient.connect(e.port)
    const scramble = greetingScramble((await client.packet()).payload)
    client.send(1, sslRequest())
    await client.startTls()
    const hr = bigResponse(scramble)
    await client.writeSlowly(frame(2, hr), 7, 1)
    const expected = Buffer.from(hr)
    expected[1] = expected[1]! & ~(CAP.SSL >> 8)
    await waitFor(() => backend.conns[0]!.received.length >= expected.length + 4, { timeoutMs: 5000, what: 'relayed response' })
    assert.deepEqual(backend.conns[0]!.received, frame(1, expected))
    client.destroy()
  })

  test('mysql2 with many connectAttributes over a stream cut into 7-byte writes', async () => {
    const connectAttributes = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}_${'a'.repeat(10)}`, `v${i}_${'b'.repeat(30)}`]))
    const c = await mysql.createConnection({
      ...longUser,
      database: 'information_schema',
      connectAttributes,
      ssl: { ca },
      stream: () => choppedStream(gw.port, 7),
      connectTimeout: 10_000,
    })
    try {
      const [[row]] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u, DATABASE() AS d')
      assert.equal(String(row!.u).split('@')[0], longUser.user)
      assert.equal(row!.d, 'information_schema')
    } finally {
      await c.end()
    }
    const authenticated = gw.logs.filter((l) => l.msg === 'authenticated' && l.user === longUser.user)
    assert.ok(authenticated.length > 0, 'the gateway parsed user and database from the big response')
  })
})

describe('pre-auth size cap (maxHandshakeBytes)', () => {
  const oversized = (caps: number) =>
    handshakeResponse({ caps, user: 'big', auth: Buffer.alloc(20, 7), attrs: [['blob', 'z'.repeat(8000)]] })

  test('8 KB response inside TLS with a 4 KiB cap: 1153 08S01 at seq 3, backend sees nothing', async () => {
    const backend = await rawBackend()
    const e = await engine({ name: 'capped', backend: { host: '127.0.0.1', port: backend.port }, maxHandshakeBytes: 4096 })
    const client = await RawClient.connect(e.port)
    await client.packet()
    client.send(1, sslRequest())
    await client.startTls()
    const hr = oversized(CLIENT_CAPS | CAP.SSL)
    assert.ok(hr.length > 8000)
    client.send(2, hr)
    await expectErr(client, 1153, '08S01', 3)
    assert.equal(backend.conns[0]!.received.length, 0)
  })

  test('8 KB plaintext first packet with a 4 KiB cap: 1153 at seq 2', async () => {
    const e = await engine({ name: 'capped-plain', maxHandshakeBytes: 4096 })
    const client = await RawClient.connect(e.port)
    await client.packet()
    client.send(1, oversized(CLIENT_CAPS))
    await expectErr(client, 1153, '08S01', 2)
  })

  test('mysql2 with 8 KB of attributes gets 1153', async () => {
    const e = await engine({ name: 'capped-mysql2', maxHandshakeBytes: 4096 })
    await assert.rejects(
      mysql.createConnection({ host: e.host, port: e.port, ...longUser, ssl: { ca }, connectAttributes: { blob: 'z'.repeat(8000) } }),
      (err: any) => {
        assert.deepEqual([err.errno, err.sqlState], [1153, '08S01'], err.message)
        return true
      }
    )
  })
})

/** A client-side stream to 127.0.0.1:port whose writes leave in `size`-byte pieces, one event-loop turn apart. */
function choppedStream(port: number, size: number): Duplex {
  const sock = net.connect({ host: '127.0.0.1', port, noDelay: true })
  const duplex = new Duplex({
    read() {},
    async write(chunk: Buffer, _enc, cb) {
      for (let i = 0; i < chunk.length; i += size) {
        sock.write(chunk.subarray(i, i + size))
        await delay(0)
      }
      cb()
    },
    final(cb) {
      sock.end(cb)
    },
    destroy(err, cb) {
      sock.destroy()
      cb(err)
    },
  })
  sock.on('data', (d: Buffer) => duplex.push(d))
  sock.on('end', () => duplex.push(null))
  sock.on('error', (err) => duplex.destroy(err))
  return duplex
}
