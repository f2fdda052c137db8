/**
 * caching_sha2_password and sha256_password through the gateway (notes §4.3, §4.4) against the FAKE MySQL 8
 * server (test/fakes), which really RSA-decrypts and compares passwords. The route's backend leg is plain, the
 * client (mysql2) is on TLS, so a full authentication only succeeds if the gateway itself fetches the key and
 * sends RSA-OAEP ciphertext. Also the gateway-greeting mode: native and ed25519 on MariaDB, caching_sha2 on the
 * fake via the single relayed auth switch.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import mysql from 'mysql2/promise'
import * as mariadb from 'mariadb'
import { testEnv } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { routeConfig, startEngine, type RouteOverrides, type RunningEngine } from '../helpers/engine.js'
import { startFakeMysql8, type FakeAccount, type FakeMysql8, type FakeMysql8Event, type FakeMysql8Options } from '../fakes/mysql8-server.js'

const env = testEnv()
const ca = readFileSync(env.pki.caCert)
const db = harnessMariaDb(env)

// OAEP with SHA-1 leaves 2048/8 - 42 = 214 bytes of plaintext: password + NUL, so 213 characters at most.
const MAX_PW = 'M'.repeat(201) + '-0123456789!'
const TOO_LONG_PW = MAX_PW + 'X'
assert.deepEqual([MAX_PW.length, TOO_LONG_PW.length], [213, 214])
const ACCOUNTS: FakeAccount[] = [
  { user: 'sha2user', password: 'sha2-Secret-pw', plugin: 'caching_sha2_password' },
  { user: 'sha256user', password: 'sha256-Secret-pw', plugin: 'sha256_password' },
  // 50 characters: (password + NUL) XOR the 20-byte scramble cycles it two and a half times.
  { user: 'longpw', password: 'Abcdefghij-0123456789-klmnopqrst-UVWXYZ-!#%&()*+,.', plugin: 'caching_sha2_password' },
  { user: 'maxpw', password: MAX_PW, plugin: 'caching_sha2_password' },
  { user: 'toolong', password: TOO_LONG_PW, plugin: 'caching_sha2_password' },
]
const pw = (user: string): string => ACCOUNTS.find((a) => a.user === user)!.password

const fakes: FakeMysql8[] = []
const engines: RunningEngine[] = []

async function fake(opts: Partial<FakeMysql8Options> = {}): Promise<FakeMysql8> {
  const f = await startFakeMysql8({ accounts: ACCOUNTS, ...opts })
  fakes.push(f)
  return f
}

/** A TLS-required route to the fake over a PLAIN backend leg, logging at trace level (to hunt for secrets). */
async function gatewayTo(f: FakeMysql8, overrides: RouteOverrides = {}, greeting: 'backend' | 'gateway' = 'backend') {
  const route = routeConfig({ backend: { host: f.host, port: f.port }, backendTls: { mode: 'disabled' }, greeting, ...overrides })
  const gw = await startEngine(route, { greeting, level: 'trace' })
  engines.push(gw)
  return gw
}

after(async () => {
  for (const gw of engines) await gw.close()
  await Promise.all(fakes.map((f) => f.close()))
  await db.close()
})

const connect = (gw: RunningEngine, user: string, password = pw(user)) =>
  mysql.createConnection({ host: gw.host, port: gw.port, user, password, ssl: { ca }, connectTimeout: 10_000 })

/** Logs in through the gateway, checks the fake says it is `user`, closes; returns that connection's fake events. */
async function login(gw: RunningEngine, f: FakeMysql8, user: string): Promise<FakeMysql8Event[]> {
  const c = await connect(gw, user)
  try {
    const tlsStream = (c as unknown as { connection: { stream: import('node:tls').TLSSocket } }).connection.stream
    assert.ok(tlsStream.encrypted, 'the client leg is TLS')
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER()')
    assert.equal(rows[0]!['CURRENT_USER()'], `${user}@%`)
  } finally {
    await c.end()
  }
  return lastConnEvents(f)
}

const lastConnEvents = (f: FakeMysql8): FakeMysql8Event[] => {
  const id = f.events.filter((e) => e.kind === 'connect').at(-1)!.connId
  return f.events.filter((e) => e.connId === id)
}
const kinds = (evs: FakeMysql8Event[]): string[] => evs.map((e) => e.kind)
const find = <K extends FakeMysql8Event['kind']>(evs: FakeMysql8Event[], kind: K) =>
  evs.find((e): e is Extract<FakeMysql8Event, { kind: K }> => e.kind === kind)

/** The fake saw a full authentication that the gateway completed with RSA (the client only ever spoke TLS). */
function assertGatewayRsa(evs: FakeMysql8Event[], user: string, plugin: FakeAccount['plugin']): void {
  const full = find(evs, 'full-auth')
  assert.ok(full, `no full authentication in ${kinds(evs).join(',')}`)
  assert.deepEqual({ user: full.user, plugin: full.plugin, via: full.via, keyRequested: full.keyRequested }, { user, plugin, via: 'rsa', keyRequested: true })
  assert.equal(find(evs, 'handshake-response')?.tls, false, 'the backend leg is plain')
  assert.ok(find(evs, 'auth-ok'), `login failed: ${kinds(evs).join(',')}`)
}

const accessDenied = (user: string) => (err: any) => {
  assert.equal(err.errno, 1045, err.message)
  assert.equal(err.sqlState, '28000')
  assert.equal(err.message, `Access denied for user '${user}'@'localhost' (using password: YES)`)
  return true
}

describe('caching_sha2_password over a plain backend leg (gateway does RSA)', () => {
  let f: FakeMysql8
  let gw: RunningEngine
  before(async () => {
    f = await fake()
    gw = await gatewayTo(f, { name: 'sha2' })
  })

  test('first login: full authentication, the gateway fetches the key and sends RSA-OAEP', async () => {
    const evs = await login(gw, f, 'sha2user')
    assert.equal(find(evs, 'full-auth-required')?.reason, 'not-cached')
    assert.equal(find(evs, 'public-key-request')?.plugin, 'caching_sha2_password')
    assertGatewayRsa(evs, 'sha2user', 'caching_sha2_password')
    assert.ok(gw.logs.some((l) => l.msg === 'gateway completed RSA password exchange' && l.plugin === 'caching_sha2_password'))
  })

  test('second login: fast path (`01 03` and the OK in one read), no key, no RSA', async () => {
    const evs = await login(gw, f, 'sha2user')
    assert.ok(find(evs, 'fast-auth'), kinds(evs).join(','))
    assert.equal(find(evs, 'full-auth'), undefined)
    assert.equal(find(evs, 'public-key-request'), undefined)
  })

  test('after clearCache (FLUSH PRIVILEGES): full authentication via RSA again', async () => {
    f.clearCache()
    assertGatewayRsa(await login(gw, f, 'sha2user'), 'sha2user', 'caching_sha2_password')
  })

  test('wrong password, uncached and cached: the backend 1045 reaches the client', async () => {
    f.clearCache()
    await assert.rejects(connect(gw, 'sha2user', 'wrong-password'), accessDenied('sha2user'))
    let evs = lastConnEvents(f)
    assert.equal(find(evs, 'full-auth')?.via, 'rsa', 'the wrong password went through RSA and was really compared')
    assert.equal(find(evs, 'auth-fail')?.reason, 'password mismatch')
    await login(gw, f, 'sha2user') // fills the cache
    await assert.rejects(connect(gw, 'sha2user', 'wrong-password'), accessDenied('sha2user'))
    evs = lastConnEvents(f)
    assert.equal(find(evs, 'full-auth-required')?.reason, 'scramble-mismatch')
    assert.equal(find(evs, 'auth-fail')?.reason, 'password mismatch')
    const closed = gw.logs.filter((l) => l.msg === 'connection closed').at(-1)!
    assert.deepEqual([closed.outcome, closed.errorCode], ['auth_failed', 1045])
  })

  test('50-character password (the XOR cycles the 20-byte scramble)', async () => {
    assertGatewayRsa(await login(gw, f, 'longpw'), 'longpw', 'caching_sha2_password')
  })

  test('213-character password (the RSA-2048 OAEP limit) works', async () => {
    assertGatewayRsa(await login(gw, f, 'maxpw'), 'maxpw', 'caching_sha2_password')
  })

  test('214-character password: refused with a clear ERR naming the route, backend never gets ciphertext', async () => {
    await assert.rejects(connect(gw, 'toolong'), (err: any) => {
      assert.ok(!(err.errno >= 2000 && err.errno < 3000), `client-range code ${err.errno}`)
      assert.match(err.sqlState ?? '', /^[0-9A-Z]{5}$/)
      assert.match(err.message, /^route sha2: .*password too long/, err.message)
      return true
    })
    const evs = lastConnEvents(f)
    assert.ok(find(evs, 'public-key-request'))
    assert.equal(find(evs, 'full-auth'), undefined, 'no ciphertext reached the backend')
    assert.equal(gw.logs.filter((l) => l.msg === 'connection closed').at(-1)!.outcome, 'auth_failed')
  })
})

describe('caching_sha2 variants of the fake', () => {
  test('PEM split across several reads (header cut too): full authentication still works', async () => {
    const f = await fake({ splitPemWrites: true })
    const gw = await gatewayTo(f, { name: 'split-pem' })
    assertGatewayRsa(await login(gw, f, 'sha2user'), 'sha2user', 'caching_sha2_password')
  })

  test('fast path with `01 03` and the OK in two reads 20 ms apart', async () => {
    const f = await fake({ oneReadFastAuth: false })
    const gw = await gatewayTo(f, { name: 'two-reads' })
    await login(gw, f, 'sha2user')
    const evs = await login(gw, f, 'sha2user')
    assert.ok(find(evs, 'fast-auth'), kinds(evs).join(','))
  })
})

describe('sha256_password over a plain backend leg (gateway rewrites and encrypts)', () => {
  test('account plugin differs from the greeting (auth switch): clear reply replaced by `01` + RSA', async () => {
    const f = await fake()
    const gw = await gatewayTo(f, { name: 'sha256-switch' })
    const evs = await login(gw, f, 'sha256user')
    assert.equal(find(evs, 'auth-switch')?.to, 'sha256_password')
    assert.equal(find(evs, 'public-key-request')?.plugin, 'sha256_password')
    assertGatewayRsa(evs, 'sha256user', 'sha256_password')
    await assert.rejects(connect(gw, 'sha256user', 'wrong-password'), accessDenied('sha256user'))
  })

  test('greeting plugin is sha256_password: the clear password in the HandshakeResponse is rewritten', async () => {
    const f = await fake({ defaultPlugin: 'sha256_password' })
    const gw = await gatewayTo(f, { name: 'sha256-direct' })
    const evs = await login(gw, f, 'sha256user')
    const hr = find(evs, 'handshake-response')!
    assert.equal(hr.plugin, 'sha256_password')
    assert.equal(hr.authLength, 1, 'the backend got the key request `01`, not the clear password')
    assert.equal(find(evs, 'auth-switch'), undefined)
    assertGatewayRsa(evs, 'sha256user', 'sha256_password')
  })
})

describe('gateway-greeting mode (the backend is dialled after TLS and the HandshakeResponse)', () => {
  let native: Account
  let ed: Account
  let maria: RunningEngine
  before(async () => {
    ;[native, ed] = await Promise.all([createAccount(db, { user: 'c2gg' }), createAccount(db, { user: 'c2gged', plugin: 'ed25519' })])
    maria = await startEngine(routeConfig({ name: 'gg-maria', greeting: 'gateway' }), { greeting: 'gateway' })
    engines.push(maria)
  })

  test('native account on MariaDB with mysql2', async () => {
    const c = await mysql.createConnection({ host: maria.host, port: maria.port, ...native, ssl: { ca } })
    try {
      const [[row]] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u')
      assert.equal(String(row!.u).split('@')[0], native.user)
    } finally {
      await c.end()
    }
  })

  test('ed25519 account on MariaDB with the mariadb connector', async () => {
    const c = await mariadb.createConnection({ host: maria.host, port: maria.port, ...ed, ssl: { ca }, connectTimeout: 10_000 })
    try {
      const rows = await c.query('SELECT CURRENT_USER() AS u')
      assert.equal(String(rows[0].u).split('@')[0], ed.user)
    } finally {
      await c.end()
    }
  })

  test('caching_sha2 full authentication on the fake: one switch from gw_probe, then gateway RSA', async () => {
    const f = await fake()
    const gw = await gatewayTo(f, { name: 'gg-sha2' }, 'gateway')
    const evs = await login(gw, f, 'sha2user')
    const hr = find(evs, 'handshake-response')!
    assert.deepEqual([hr.plugin, hr.authLength], ['gw_probe', 0], 'the probe carries no auth data')
    const switches = evs.filter((e) => e.kind === 'auth-switch')
    assert.equal(switches.length, 1)
    assert.equal(find(evs, 'auth-switch')?.to, 'caching_sha2_password')
    assertGatewayRsa(evs, 'sha2user', 'caching_sha2_password')
    // And the fast path through the same mode.
    assert.ok(find(await login(gw, f, 'sha2user'), 'fast-auth'))
    await assert.rejects(connect(gw, 'sha2user', 'wrong-password'), accessDenied('sha2user'))
  })
})

test('no clear password appears in any captured log line (trace level), in any common encoding', () => {
  assert.ok(engines.length >= 7 && engines.every((gw) => gw.logs.length > 0))
  const secrets = [...ACCOUNTS.map((a) => a.password), 'wrong-password']
  for (const gw of engines) {
    const text = gw.logText()
    for (const secret of secrets) {
      for (const form of [secret, Buffer.from(secret).toString('hex'), Buffer.from(secret).toString('base64')]) {
        assert.ok(!text.includes(form), `a password (${form.slice(0, 6)}...) is in the gateway logs`)
      }
    }
  }
})
