/**
 * Exercises the fake MySQL 8 server directly (no gateway) with real drivers, so that gateway tests
 * can later trust it: mysql2 does caching_sha2/sha256 RSA itself when not on TLS (it sends `02` /
 * `01`, reads the PEM, encrypts with OAEP-SHA1), and the mariadb connector negotiates
 * CLIENT_DEPRECATE_EOF, which mysql2 never does. A raw probe checks bytes drivers hide.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { constants, publicEncrypt } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import mariadb from 'mariadb'
import mysql from 'mysql2/promise'
import { startFakeMysql8, type FakeAccount, type FakeMysql8, type FakeMysql8Event, type FakeMysql8Options } from '../fakes/mysql8-server.js'
import { MysqlProbe, handshakeResponse, parseGreeting, sha2Token } from '../fakes/fake-mysql8-probe.js'

const LONG_PW = 'Abcdefghij-0123456789-klmnopqrst-UVWXYZ-!#%&()*+,.' // 50 chars: cycles the 20-byte scramble
const ACCOUNTS: FakeAccount[] = [
  { user: 'sha2user', password: 'sha2-Secret', plugin: 'caching_sha2_password' },
  { user: 'sha256user', password: 'sha256-Secret', plugin: 'sha256_password' },
  { user: 'nativeuser', password: 'native-Secret', plugin: 'mysql_native_password' },
  { user: 'longpw', password: LONG_PW, plugin: 'caching_sha2_password' },
  { user: 'nopw', password: '', plugin: 'caching_sha2_password' },
  { user: 'sslonly', password: 'sslonly-Secret', plugin: 'caching_sha2_password', requireSsl: true },
]
const pw = (user: string): string => ACCOUNTS.find((a) => a.user === user)!.password

// Probe capability sets: PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | PLUGIN_AUTH_LENENC_CLIENT_DATA (+ DEPRECATE_EOF).
const PROBE_CAPS = 0x200 | 0x8000 | 0x80000 | 0x200000
const DEPRECATE_EOF = 1 << 24

const fakes: FakeMysql8[] = []
async function fake(opts: Partial<FakeMysql8Options> = {}): Promise<FakeMysql8> {
  const f = await startFakeMysql8({ accounts: ACCOUNTS, ...opts })
  fakes.push(f)
  return f
}

async function login(f: FakeMysql8, user: string, password: string, extra: Partial<mysql.ConnectionOptions> = {}) {
  return mysql.createConnection({ host: '127.0.0.1', port: f.port, user, password, connectTimeout: 5000, ...extra })
}

/** Logs in, checks the session answers as `user`, closes; returns that connection's events. */
async function loginAndCheck(f: FakeMysql8, user: string, password: string, extra: Partial<mysql.ConnectionOptions> = {}) {
  const conn = await login(f, user, password, extra)
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER()')
    assert.equal(rows[0]['CURRENT_USER()'], `${user}@%`)
    return eventsOf(f, conn.threadId)
  } finally {
    await conn.end()
  }
}

const eventsOf = (f: FakeMysql8, connId: number): FakeMysql8Event[] => f.events.filter((e) => e.connId === connId)
const lastConnEvents = (f: FakeMysql8): FakeMysql8Event[] => eventsOf(f, f.events.filter((e) => e.kind === 'connect').at(-1)!.connId)
const kinds = (evs: FakeMysql8Event[]): string[] => evs.map((e) => e.kind)
const find = <K extends FakeMysql8Event['kind']>(evs: FakeMysql8Event[], kind: K) =>
  evs.find((e): e is Extract<FakeMysql8Event, { kind: K }> => e.kind === kind)

const accessDenied = (user: string) => (err: unknown) => {
  const e = err as { errno?: number; sqlState?: string; message: string }
  assert.equal(e.errno, 1045)
  assert.equal(e.sqlState, '28000')
  assert.equal(e.message, `Access denied for user '${user}'@'localhost' (using password: YES)`)
  return true
}

/** Probe: greeting, then a HandshakeResponse naming caching_sha2 with a correct token. */
async function probeSha2Login(f: FakeMysql8, user: string, caps = PROBE_CAPS) {
  const probe = await MysqlProbe.connect(f.port)
  const g = parseGreeting((await probe.packet()).payload)
  probe.send(1, handshakeResponse({ caps, user, auth: sha2Token(pw(user), g.scramble), plugin: 'caching_sha2_password' }))
  return { probe, g }
}

let certDir = ''
let tlsFiles: { cert: Buffer; key: Buffer } = { cert: Buffer.alloc(0), key: Buffer.alloc(0) }

before(async () => {
  // A self-signed CA:TRUE cert doubles as its own trust anchor; minted per run, nothing committed.
  certDir = await mkdtemp(path.join(os.tmpdir(), 'fake-mysql8-'))
  const [cert, key] = [path.join(certDir, 'cert.pem'), path.join(certDir, 'key.pem')]
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-addext', 'basicConstraints=critical,CA:TRUE',
  ], { timeout: 30_000 })
  tlsFiles = { cert: await readFile(cert), key: await readFile(key) }
})

after(async () => {
  await Promise.all(fakes.map((f) => f.close()))
  if (certDir) await rm(certDir, { recursive: true, force: true })
})

describe('fake MySQL 8 server', { timeout: 60_000 }, () => {
  test('greeting is a MySQL 8 HandshakeV10 without CLIENT_SSL on a plain backend', async () => {
    for (const withTls of [false, true]) {
      const f = await fake(withTls ? { tls: tlsFiles } : {})
      const probe = await MysqlProbe.connect(f.port)
      const pkt = await probe.packet()
      probe.close()
      const g = parseGreeting(pkt.payload)
      assert.equal(pkt.seq, 0)
      assert.equal(g.version, '8.0.40-fake')
      assert.equal(g.collation, 255)
      assert.equal(g.status, 2)
      assert.equal(g.plugin, 'caching_sha2_password')
      assert.ok(pkt.payload.subarray(-22).equals(Buffer.from('caching_sha2_password\0')))
      assert.deepEqual([...g.reserved], new Array(10).fill(0))
      assert.equal(g.scramble.length, 20)
      for (const bit of [0, 9, 15, 19, 20, 21, 24]) assert.ok(g.caps & (1 << bit), `capability bit ${bit}`)
      assert.equal(Boolean(g.caps & 0x800), withTls, 'CLIENT_SSL only when tls is configured')
    }
    // Scrambles are random: sample enough of them that a NUL/'$'/8-bit byte would show up.
    const f = await fake()
    const seen = new Set<string>()
    for (let i = 0; i < 30; i++) {
      const probe = await MysqlProbe.connect(f.port)
      const { scramble } = parseGreeting((await probe.packet()).payload)
      probe.close()
      seen.add(scramble.toString('hex'))
      assert.ok(scramble.every((b) => b >= 1 && b <= 127 && b !== 0x24), `scramble ${scramble.toString('hex')}`)
    }
    assert.equal(seen.size, 30, 'a new scramble per connection')
  })

  test('caching_sha2: RSA on first plain login, fast path next, RSA again after clearCache', async () => {
    const f = await fake()
    const first = await loginAndCheck(f, 'sha2user', pw('sha2user'))
    assert.deepEqual(find(first, 'full-auth'), {
      kind: 'full-auth', user: 'sha2user', plugin: 'caching_sha2_password', via: 'rsa', keyRequested: true, connId: first[0].connId,
    })
    assert.ok(kinds(first).includes('public-key-request'))
    assert.equal(find(first, 'auth-switch'), undefined, 'mysql2 answers the greeting plugin directly')

    const second = await loginAndCheck(f, 'sha2user', pw('sha2user'))
    assert.ok(kinds(second).includes('fast-auth'))
    assert.equal(find(second, 'full-auth'), undefined)

    f.clearCache()
    const third = await loginAndCheck(f, 'sha2user', pw('sha2user'))
    assert.equal(find(third, 'full-auth')?.via, 'rsa')
  })

  test('wrong password gets ERR 1045 #28000 on a cold and on a warm cache', async () => {
    const f = await fake()
    await assert.rejects(login(f, 'sha2user', 'not-it'), accessDenied('sha2user'))
    assert.equal(find(lastConnEvents(f), 'full-auth-required')?.reason, 'not-cached')
    await loginAndCheck(f, 'sha2user', pw('sha2user'))
    await assert.rejects(login(f, 'sha2user', 'not-it'), accessDenied('sha2user'))
    assert.equal(find(lastConnEvents(f), 'full-auth-required')?.reason, 'scramble-mismatch')
    await assert.rejects(login(f, 'nobody', 'x'), accessDenied('nobody'))
    await assert.rejects(login(f, 'nativeuser', 'not-it'), accessDenied('nativeuser'))
  })

  test('sha256_password over plain TCP: switch with a fresh scramble, then RSA', async () => {
    const f = await fake()
    const evs = await loginAndCheck(f, 'sha256user', pw('sha256user'))
    const sw = find(evs, 'auth-switch')
    assert.equal(sw?.to, 'sha256_password')
    assert.equal(sw?.freshScramble, true)
    assert.equal(find(evs, 'public-key-request')?.plugin, 'sha256_password')
    assert.equal(find(evs, 'full-auth')?.via, 'rsa')
    await assert.rejects(login(f, 'sha256user', 'not-it'), accessDenied('sha256user'))
  })

  test('mysql_native_password account: one switch that reuses the greeting scramble', async () => {
    const f = await fake()
    const sw = find(await loginAndCheck(f, 'nativeuser', pw('nativeuser')), 'auth-switch')
    assert.deepEqual([sw?.from, sw?.to, sw?.freshScramble], ['caching_sha2_password', 'mysql_native_password', false])
    const g = await fake({ defaultPlugin: 'mysql_native_password' })
    assert.equal(find(await loginAndCheck(g, 'nativeuser', pw('nativeuser')), 'auth-switch'), undefined)
  })

  test('with tls, full auth sends the password in clear over TLS (caching_sha2 and sha256)', async () => {
    const f = await fake({ tls: tlsFiles })
    const ssl = { ca: tlsFiles.cert }
    const sha2 = await loginAndCheck(f, 'sha2user', pw('sha2user'), { ssl })
    assert.ok(kinds(sha2).includes('tls-upgrade'))
    assert.equal(find(sha2, 'handshake-response')?.tls, true)
    assert.equal(find(sha2, 'full-auth')?.via, 'clear-over-tls')
    assert.equal(find(sha2, 'public-key-request'), undefined)
    const s256 = await loginAndCheck(f, 'sha256user', pw('sha256user'), { ssl })
    assert.equal(find(s256, 'full-auth')?.via, 'clear-over-tls')
    await assert.rejects(login(f, 'sha2user', 'not-it', { ssl }), accessDenied('sha2user'))
    // sha256_password as greeting plugin: a TLS client puts `password\0` in the HandshakeResponse itself.
    const g = await fake({ tls: tlsFiles, defaultPlugin: 'sha256_password' })
    const direct = await loginAndCheck(g, 'sha256user', pw('sha256user'), { ssl })
    assert.deepEqual([find(direct, 'handshake-response')?.plugin, find(direct, 'auth-switch')], ['sha256_password', undefined])
    assert.equal(find(direct, 'handshake-response')?.authLength, pw('sha256user').length + 1)
    assert.equal(find(direct, 'full-auth')?.via, 'clear-over-tls')
    // REQUIRE SSL-style account: refused on plain even with the right password, fine on TLS.
    await assert.rejects(login(f, 'sslonly', pw('sslonly')), accessDenied('sslonly'))
    await loginAndCheck(f, 'sslonly', pw('sslonly'), { ssl })
  })

  test('splitPemWrites: the PEM packet arrives over several reads and RSA still works', async () => {
    const f = await fake({ splitPemWrites: true })
    assert.equal(find(await loginAndCheck(f, 'sha2user', pw('sha2user')), 'full-auth')?.keyRequested, true)
    f.clearCache()
    // Same exchange by hand: checks sequence ids and the AuthMoreData framing of the key.
    const { probe, g } = await probeSha2Login(f, 'sha2user')
    try {
      const more = await probe.packet()
      assert.deepEqual([more.seq, [...more.payload]], [2, [1, 4]])
      probe.send(3, Buffer.from([2]))
      const key = await probe.packet()
      assert.equal(key.seq, 4)
      assert.ok(key.lastChunk - key.firstChunk >= 3, `PEM spread over ${key.lastChunk - key.firstChunk + 1} reads`)
      assert.equal(key.payload[0], 0x01)
      const pem = key.payload.subarray(1).toString('ascii')
      assert.equal(pem, f.publicKeyPem)
      assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n/)
      const clear = Buffer.from(`${pw('sha2user')}\0`)
      const xored = clear.map((b, i) => b ^ g.scramble[i % 20])
      probe.send(5, publicEncrypt({ key: pem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, xored))
      const ok = await probe.packet()
      assert.deepEqual([ok.seq, ok.payload[0]], [6, 0x00])
    } finally {
      probe.close()
    }
  })

  test('a 50-character password works via RSA and via the fast path (scramble cycling)', async () => {
    const f = await fake()
    assert.equal(LONG_PW.length, 50)
    assert.equal(find(await loginAndCheck(f, 'longpw', LONG_PW), 'full-auth')?.via, 'rsa')
    assert.ok(kinds(await loginAndCheck(f, 'longpw', LONG_PW)).includes('fast-auth'))
    await assert.rejects(login(f, 'longpw', LONG_PW.slice(0, 49)), accessDenied('longpw'))
  })

  test('plain connection: clear text after `01 04` is refused with 1045, like MySQL', async () => {
    const f = await fake()
    const { probe } = await probeSha2Login(f, 'sha2user')
    try {
      assert.deepEqual((await probe.packet()).payload, Buffer.from([1, 4]))
      probe.send(3, Buffer.from(`${pw('sha2user')}\0`))
      const err = await probe.packet()
      assert.equal(err.seq, 4)
      assert.equal(err.payload.toString('latin1', 0, 9), '\xff\x15\x04#28000')
      assert.ok(await probe.closedWithin(2000), 'server closes after the ERR')
    } finally {
      probe.close()
    }
  })

  test('fast auth: `01 03` and OK share one write by default, two writes if oneReadFastAuth=false', async () => {
    for (const oneReadFastAuth of [true, false]) {
      const f = await fake({ oneReadFastAuth })
      await loginAndCheck(f, 'sha2user', pw('sha2user'))
      const { probe } = await probeSha2Login(f, 'sha2user')
      try {
        const more = await probe.packet()
        const ok = await probe.packet()
        assert.deepEqual([more.seq, [...more.payload], ok.seq, ok.payload[0]], [2, [1, 3], 3, 0])
        assert.equal(more.firstChunk === ok.lastChunk, oneReadFastAuth)
      } finally {
        probe.close()
      }
    }
  })

  test('a packet with the wrong sequence id gets ERR 1156 08S01', async () => {
    const f = await fake()
    const probe = await MysqlProbe.connect(f.port)
    try {
      const g = parseGreeting((await probe.packet()).payload)
      probe.send(2, handshakeResponse({ caps: PROBE_CAPS, user: 'sha2user', auth: sha2Token('x', g.scramble), plugin: 'caching_sha2_password' }))
      const err = await probe.packet()
      assert.equal(err.seq, 3)
      assert.equal(err.payload.readUInt16LE(1), 1156)
      assert.equal(err.payload.toString('utf8', 3), '#08S01Got packets out of order')
    } finally {
      probe.close()
    }
  })

  test('resultset ends with EOF packets, or with an OK/0xFE header under DEPRECATE_EOF', async () => {
    const f = await fake()
    for (const caps of [PROBE_CAPS, PROBE_CAPS | DEPRECATE_EOF]) {
      const { probe } = await probeSha2Login(f, 'nopw', caps)
      try {
        assert.deepEqual((await probe.packet()).payload, Buffer.from([0, 0, 0, 2, 0, 0, 0]), 'empty password: plain OK')
        probe.send(0, Buffer.from('\x03SELECT 1'))
        const msgs = []
        for (let i = 0; i < (caps & DEPRECATE_EOF ? 4 : 5); i++) msgs.push(await probe.packet())
        assert.deepEqual(msgs.map((m) => m.seq), msgs.map((_, i) => i + 1))
        const hex = msgs.map((m) => m.payload.toString('hex'))
        assert.equal(hex[0], '01')
        // def, '', '', '', name '1', '', 0x0c, charset 63, length 1, LONGLONG, NOT_NULL|BINARY, 0 decimals, filler
        assert.equal(hex[1], '03646566' + '000000' + '0131' + '00' + '0c' + '3f00' + '01000000' + '08' + '8100' + '00' + '0000')
        const tail = caps & DEPRECATE_EOF ? ['0131', 'fe000002000000'] : ['fe00000200', '0131', 'fe00000200']
        assert.deepEqual(hex.slice(2), tail)
      } finally {
        probe.close()
      }
    }
  })

  test('ping, changeUser (switch + RSA), failed changeUser disconnects, quit closes', async () => {
    const f = await fake()
    const conn = await login(f, 'nativeuser', pw('nativeuser'))
    try {
      await conn.ping()
      const [v] = await conn.query<mysql.RowDataPacket[]>('SELECT @@version')
      assert.equal(v[0]['@@version'], '8.0.40-fake')
      await conn.changeUser({ user: 'sha2user', password: pw('sha2user') })
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER()')
      assert.equal(rows[0]['CURRENT_USER()'], 'sha2user@%')
      const evs = eventsOf(f, conn.threadId)
      const sw = evs.filter((e) => e.kind === 'auth-switch').at(-1)
      assert.deepEqual(sw && sw.kind === 'auth-switch' && [sw.to, sw.freshScramble], ['caching_sha2_password', true])
      assert.equal(evs.filter((e) => e.kind === 'full-auth').length, 1)
      await assert.rejects(conn.changeUser({ user: 'sha2user', password: 'not-it' }), accessDenied('sha2user'))
      await assert.rejects(conn.query('SELECT 1'))
    } finally {
      conn.destroy()
    }
    const quitter = await login(f, 'sha2user', pw('sha2user'))
    await quitter.end()
    const deadline = Date.now() + 2000
    while (f.connections() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    assert.equal(f.connections(), 0)
  })

  test('mariadb connector: caching_sha2 RSA and DEPRECATE_EOF resultsets', async () => {
    const f = await fake()
    for (const user of ['sha2user', 'sha2user', 'sha256user']) {
      const conn = await mariadb.createConnection({
        host: '127.0.0.1', port: f.port, user, password: pw(user), allowPublicKeyRetrieval: true, connectTimeout: 5000,
      })
      try {
        assert.deepEqual(await conn.query("SELECT 'abc'"), [{ abc: 'abc' }])
        assert.deepEqual(await conn.query('SELECT CURRENT_USER()'), [{ 'CURRENT_USER()': `${user}@%` }])
      } finally {
        await conn.end()
      }
    }
    const hrs = f.events.filter((e) => e.kind === 'handshake-response')
    assert.ok(hrs.every((e) => e.kind === 'handshake-response' && (e.caps & DEPRECATE_EOF) !== 0))
    assert.deepEqual(f.events.filter((e) => e.kind === 'full-auth').length, 2, 'second sha2 login used the cache')
  })

  test('events never contain a password', () => {
    const dump = JSON.stringify(fakes.flatMap((f) => f.events))
    assert.ok(dump.length > 1000, 'earlier tests recorded events')
    for (const a of ACCOUNTS) if (a.password) assert.ok(!dump.includes(a.password), `password of ${a.user} leaked`)
  })
})
