/**
 * Metrics, /routes and connection logs seen from outside, through the real CLI: mysql2 clients on TLS, then
 * /metrics scraped and compared to the scrape before, counter by counter, per route.
 *
 * Routes: alpha and bravo relay to the harness MariaDB, charlie to a MariaDB this file starts (and stops, for
 * backend_unavailable), delta to an in-process fake MySQL 8 where caching_sha2 full authentication makes the
 * client send its password in clear text inside TLS, so a leak of it into the logs would be visible.
 * Lifecycle (reload, kill -9, SIGTERM drain) is in metrics-admin-lifecycle.test.ts.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import type { TLSSocket } from 'node:tls'
import mysql from 'mysql2/promise'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, startMariaDb, type Account, type MariaDbInstance } from '../helpers/mariadb.js'
import { sampleKey } from '../helpers/prom-text.js'
import { frame } from '../helpers/packets.js'
import { CAP, CLIENT_CAPS, RawClient, greetingScramble, handshakeResponse, nativeToken, sslRequest } from '../helpers/raw-mysql.js'
import { startFakeMysql8, type FakeMysql8 } from '../fakes/mysql8-server.js'
import { connectTls, type Conn } from './support/clients.js'
import { writeInPlace } from './support/config-files.js'
import { startGateway, type GatewayRun, type LogLine } from './support/gateway-run.js'
import { anyDeltas, eventDeltas, metricsYaml, routeCert, scrape, scrapeUntil, val, type RouteCert } from './support/metrics-admin.js'

const env = testEnv()
const db = harnessMariaDb(env)
const hex = (n: number) => randomBytes(n).toString('hex')
/** Distinctive secrets: none of them, in any encoding, may ever reach the gateway's output. */
const PW_NATIVE = `Pw-Sentinel-8c1f-${hex(6)}`
const PW_SHA2 = `Pw-Sentinel-5d2e-${hex(6)}`
const PW_WRONG = `Wrong-Sentinel-3a9e-${hex(6)}`
const ROUTES = ['alpha', 'bravo', 'charlie', 'delta'] as const

const M = (name: string) => `mysqlgw_${name}`
const k = (name: string, labels: Record<string, string>) => sampleKey(M(name), labels)

let account: Account
let charlieDb: MariaDbInstance
let charlieAccount: Account
let fake: FakeMysql8
let gw: GatewayRun
let ports: Record<(typeof ROUTES)[number], number>
let certs: Record<'alpha' | 'bravo', RouteCert>
let rawOut = ''

before(async () => {
  const [acc, charlie, alphaCert, bravoCert] = await Promise.all([
    createAccount(db, { user: 'e2e_metrics', password: PW_NATIVE }),
    startMariaDb({ baseDir: tmpDir('ma-charlie') }),
    routeCert(env, `metrics-alpha-${hex(3)}.test`, 30),
    routeCert(env, `metrics-bravo-${hex(3)}.test`, 45),
  ])
  account = acc
  charlieDb = charlie
  certs = { alpha: alphaCert, bravo: bravoCert }
  charlieAccount = await createAccount(charlieDb, { user: 'e2e_charlie' })
  fake = await startFakeMysql8({ accounts: [{ user: 'e2e_sha2', password: PW_SHA2, plugin: 'caching_sha2_password' }] })
  ports = { alpha: await freePort(), bravo: await freePort(), charlie: await freePort(), delta: await freePort() }
  const adminPort = await freePort()
  const configPath = path.join(tmpDir('metrics-admin'), 'gateway.yaml')
  const shared = { cert: env.pki.cert, key: env.pki.key }
  await writeInPlace(
    configPath,
    metricsYaml({
      adminPort,
      // trace: every line the gateway can print is printed, so the secret hunt at the end covers them all.
      logLevel: 'trace',
      routes: [
        { name: 'alpha', port: ports.alpha, backendPort: env.mariadb.port, ...alphaCert },
        { name: 'bravo', port: ports.bravo, backendPort: env.mariadb.port, ...bravoCert },
        { name: 'charlie', port: ports.charlie, backendPort: charlieDb.port, ...shared },
        { name: 'delta', port: ports.delta, backendPort: fake.port, ...shared },
      ],
    })
  )
  gw = await startGateway(configPath, { adminPort })
  gw.proc.stdout!.on('data', (s: string) => (rawOut += s))
})

after(async () => {
  const stopped = await gw?.stop()
  await Promise.all([charlieDb?.stop(), fake?.close(), db.close()])
  assert.equal(stopped?.code, 0, `gateway exit; stderr: ${gw?.stderr()}`)
  assertNoSecrets() // including whatever was printed while stopping
})

function assertNoSecrets(): void {
  const out = `${rawOut}\n${JSON.stringify(gw.logs)}\n${gw.stderr()}`
  for (const secret of [PW_NATIVE, PW_SHA2, PW_WRONG]) {
    const b = Buffer.from(secret)
    const forms = {
      raw: secret,
      core: secret.slice(-12),
      hex: b.toString('hex'),
      HEX: b.toString('hex').toUpperCase(),
      // Base64 of the secret at each alignment it could have inside a larger buffer.
      ...Object.fromEntries([0, 1, 2].map((o) => [`base64@${o}`, Buffer.concat([Buffer.alloc(o), b]).toString('base64').slice(4, -4)])),
      base64url: b.toString('base64url'),
    }
    for (const [form, text] of Object.entries(forms)) {
      assert.equal(out.includes(text), false, `${secret.slice(0, 16)}... leaked as ${form}`)
    }
  }
}

/** The client's own address on the gateway connection, as the 'connection closed' line prints it. */
function clientAddress(c: Conn): string {
  const stream = (c as unknown as { connection: { stream: TLSSocket } }).connection.stream
  return `127.0.0.1:${stream.localPort}`
}

const closedLine = (client: string) =>
  gw.waitForLog((l) => l.msg === 'connection closed' && l.client === client, `'connection closed' of ${client}`)

function assertUntouched(before: Map<string, number>, after: Map<string, number>, routes: readonly string[]): void {
  for (const r of routes) assert.deepEqual(anyDeltas(before, after, r), {}, `no series of ${r} moved`)
}

test('login, query and QUIT on alpha: exactly one accepted and one ok on alpha, nothing on the others', async () => {
  const before = await scrape(gw)
  const c = await connectTls(env, ports.alpha, account)
  const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u')
  assert.equal(rows[0]!.u, `${account.user}@%`)
  await c.end()
  const okKey = k('connections_closed_total', { outcome: 'ok', route: 'alpha' })
  const after = await scrapeUntil(gw, (s) => (s.get(okKey) ?? 0) > (before.get(okKey) ?? 0), 'alpha ok counted')

  assert.deepEqual(eventDeltas(before, after, 'alpha'), {
    [k('connections_accepted_total', { route: 'alpha' })]: 1,
    [okKey]: 1,
    [k('handshake_duration_seconds_count', { route: 'alpha' })]: 1,
    [k('tls_handshakes_total', { route: 'alpha', version: 'TLSv1.3' })]: 1,
  })
  const d = anyDeltas(before, after, 'alpha')
  assert.equal(d[k('backend_connect_duration_seconds_count', { route: 'alpha' })], 1)
  assert.equal(d[k('handshake_duration_seconds_bucket', { le: '+Inf', route: 'alpha' })], 1)
  assert.ok(d[k('handshake_duration_seconds_sum', { route: 'alpha' })]! > 0, 'handshake took some time')
  assert.ok(d[k('bytes_total', { direction: 'client_to_backend', route: 'alpha' })]! > 0)
  assert.ok(d[k('bytes_total', { direction: 'backend_to_client', route: 'alpha' })]! > 0)
  assert.equal(val(after, M('connections_open'), { route: 'alpha' }), 0)
  assertUntouched(before, after, ['bravo', 'charlie', 'delta'])
})

test('an open connection shows in connections_open and /routes while open, and leaves both when it ends', async () => {
  const c = await connectTls(env, ports.bravo, account)
  // /routes first, before any scrape refreshes the children's reports: it must be current on its own.
  const viaRoutes = Object.fromEntries((await gw.routes()).map((r) => [r.name, r.open]))
  assert.deepEqual(viaRoutes, { alpha: 0, bravo: 1, charlie: 0, delta: 0 }, 'open connections in /routes')
  const s = await scrape(gw)
  assert.equal(val(s, M('connections_open'), { route: 'bravo' }), 1)
  assert.equal(val(s, M('connections_open'), { route: 'alpha' }), 0)
  await c.end()
  await scrapeUntil(gw, (x) => val(x, M('connections_open'), { route: 'bravo' }) === 0, 'bravo open back to 0')
  assert.equal((await gw.routes()).find((r) => r.name === 'bravo')!.open, 0)
})

test('a 1 MiB result: bytes_total grows by at least 1 MiB and the closed line carries every field', async () => {
  const before = await scrape(gw)
  const c = await connectTls(env, ports.alpha, account)
  const client = clientAddress(c)
  const sql = `SELECT REPEAT('x', ${1 << 20}) AS big`
  const [rows] = await c.query<mysql.RowDataPacket[]>({ sql, timeout: 10_000 })
  assert.equal(String(rows[0]!.big).length, 1 << 20)
  await c.end()
  const line = await closedLine(client)
  const after = await scrapeUntil(gw, (s) => val(s, M('connections_open'), { route: 'alpha' }) === 0, 'alpha closed')

  const toClient = val(after, M('bytes_total'), { direction: 'backend_to_client', route: 'alpha' }) -
    val(before, M('bytes_total'), { direction: 'backend_to_client', route: 'alpha' })
  const toBackend = val(after, M('bytes_total'), { direction: 'client_to_backend', route: 'alpha' }) -
    val(before, M('bytes_total'), { direction: 'client_to_backend', route: 'alpha' })
  assert.ok(toClient >= 1 << 20, `backend_to_client grew by ${toClient}`)
  assert.ok(toBackend >= sql.length, `client_to_backend grew by ${toBackend}`)

  for (const f of ['route', 'conn', 'client', 'user', 'tls', 'bytesFromClient', 'bytesFromBackend', 'durationMs', 'closedBy', 'outcome']) {
    assert.ok(line[f] !== undefined, `'connection closed' has ${f}: ${JSON.stringify(line)}`)
  }
  assert.equal(line.level, 30, 'info level')
  assert.equal(line.route, 'alpha')
  assert.equal(typeof line.conn, 'number')
  assert.equal(line.client, client)
  assert.equal(line.user, account.user)
  assert.equal(line.tls, 'TLSv1.3')
  assert.equal(line.outcome, 'ok')
  assert.ok(['client', 'backend'].includes(String(line.closedBy)), `closedBy ${String(line.closedBy)}`)
  assert.equal(typeof line.durationMs, 'number')
  assert.ok((line.durationMs as number) >= 0)
  // The only session in this window: what it logs is what the counters gained.
  assert.equal(line.bytesFromBackend, toClient, 'logged bytesFromBackend = metric delta')
  assert.equal(line.bytesFromClient, toBackend, 'logged bytesFromClient = metric delta')
})

test('a wrong password counts auth_failed on alpha only', async () => {
  const before = await scrape(gw)
  await assert.rejects(connectTls(env, ports.alpha, { user: account.user, password: PW_WRONG }), (err: { errno?: number }) => {
    assert.equal(err.errno, 1045)
    return true
  })
  const key = k('connections_closed_total', { outcome: 'auth_failed', route: 'alpha' })
  const after = await scrapeUntil(gw, (s) => (s.get(key) ?? 0) > (before.get(key) ?? 0), 'auth_failed counted')
  assert.deepEqual(eventDeltas(before, after, 'alpha'), {
    [k('connections_accepted_total', { route: 'alpha' })]: 1,
    [key]: 1,
    [k('tls_handshakes_total', { route: 'alpha', version: 'TLSv1.3' })]: 1,
  })
  assertUntouched(before, after, ['bravo', 'charlie', 'delta'])
  const line = await gw.waitForLog((l) => l.msg === 'connection closed' && l.route === 'alpha' && l.outcome === 'auth_failed', 'auth_failed line')
  assert.equal(line.user, account.user)
  assert.equal(line.errorCode, 1045)
})

test('a plaintext client on a TLS-required route: rejected_insecure and gateway error 3159', async () => {
  const before = await scrape(gw)
  await assert.rejects(
    mysql.createConnection({ host: '127.0.0.1', port: ports.alpha, user: account.user, password: PW_NATIVE, connectTimeout: 5_000 }),
    (err: { errno?: number }) => {
      assert.equal(err.errno, 3159)
      return true
    }
  )
  const key = k('connections_closed_total', { outcome: 'rejected_insecure', route: 'alpha' })
  const after = await scrapeUntil(gw, (s) => (s.get(key) ?? 0) > (before.get(key) ?? 0), 'rejected_insecure counted')
  assert.deepEqual(eventDeltas(before, after, 'alpha'), {
    [k('connections_accepted_total', { route: 'alpha' })]: 1,
    [key]: 1,
    [k('gateway_errors_total', { code: '3159', route: 'alpha' })]: 1,
  })
  assertUntouched(before, after, ['bravo', 'charlie', 'delta'])
})

test('cert_not_after_timestamp_seconds and /routes cert are the notAfter of each route certificate', async () => {
  const s = await scrape(gw)
  const views = Object.fromEntries((await gw.routes()).map((r) => [r.name, r]))
  for (const name of ['alpha', 'bravo'] as const) {
    assert.equal(val(s, M('cert_not_after_timestamp_seconds'), { route: name }), certs[name].notAfterUnix, name)
    assert.match(views[name]!.cert?.subject ?? '', new RegExp(`CN=${certs[name].cn.replace(/\./g, '\\.')}`))
    assert.equal(views[name]!.cert?.notAfter, certs[name].notAfterIso)
  }
  assert.notEqual(certs.alpha.notAfterUnix, certs.bravo.notAfterUnix, 'the two routes really differ')
})

test('caching_sha2 full authentication (clear-text password inside TLS) on delta: ok, then auth_failed', async () => {
  const before = await scrape(gw)
  const sha2 = { user: 'e2e_sha2', password: PW_SHA2 }
  const c = await connectTls(env, ports.delta, sha2)
  await c.query('SELECT 1')
  await c.end()
  assert.ok(fake.events.some((e) => e.kind === 'full-auth'), 'the fake ran a full authentication')
  await assert.rejects(connectTls(env, ports.delta, { user: 'e2e_sha2', password: PW_WRONG }), (err: { errno?: number }) => {
    assert.equal(err.errno, 1045)
    return true
  })
  const failed = k('connections_closed_total', { outcome: 'auth_failed', route: 'delta' })
  const after = await scrapeUntil(gw, (s) => (s.get(failed) ?? 0) > (before.get(failed) ?? 0), 'delta auth_failed counted')
  await gw.waitForLog((l) => l.msg === 'connection closed' && l.route === 'delta' && l.outcome === 'auth_failed', 'delta auth_failed line')
  assert.deepEqual(eventDeltas(before, after, 'delta'), {
    [k('connections_accepted_total', { route: 'delta' })]: 2,
    [k('connections_closed_total', { outcome: 'ok', route: 'delta' })]: 1,
    [failed]: 1,
    [k('handshake_duration_seconds_count', { route: 'delta' })]: 1,
    [k('tls_handshakes_total', { route: 'delta', version: 'TLSv1.3' })]: 2,
  })
  assertUntouched(before, after, ['alpha', 'bravo', 'charlie'])
})

test('charlie backend stopped: the next client gets an error and backend_unavailable counts on charlie', async () => {
  const c = await connectTls(env, ports.charlie, charlieAccount)
  await c.query('SELECT 1')
  await c.end()
  await scrapeUntil(gw, (s) => val(s, M('connections_open'), { route: 'charlie' }) === 0, 'charlie idle')
  await charlieDb.stop()

  const before = await scrape(gw)
  let errno = 0
  await assert.rejects(connectTls(env, ports.charlie, charlieAccount), (err: { errno?: number; message: string }) => {
    errno = err.errno ?? 0
    assert.match(err.message, /route charlie: backend unavailable/)
    assert.doesNotMatch(err.message, new RegExp(`:${charlieDb.port}\\b`), 'the backend address is not told to clients')
    return true
  })
  const key = k('connections_closed_total', { outcome: 'backend_unavailable', route: 'charlie' })
  const after = await scrapeUntil(gw, (s) => (s.get(key) ?? 0) > (before.get(key) ?? 0), 'backend_unavailable counted')
  assert.deepEqual(eventDeltas(before, after, 'charlie'), {
    [k('connections_accepted_total', { route: 'charlie' })]: 1,
    [key]: 1,
    [k('gateway_errors_total', { code: String(errno), route: 'charlie' })]: 1,
    [k('tls_handshakes_total', { route: 'charlie', version: 'TLSv1.3' })]: 1,
  })
  assertUntouched(before, after, ['alpha', 'bravo', 'delta'])
  const line = await gw.waitForLog((l: LogLine) => l.msg === 'connection closed' && l.route === 'charlie' && l.outcome === 'backend_unavailable', 'charlie closed line')
  assert.equal(line.errorCode, errno)
})

test('a client that sends its first query in the same write as its login: logged bytes equal the counters', async () => {
  const before = await scrape(gw)
  const c = await RawClient.connect(ports.alpha)
  const client = `127.0.0.1:${c.raw.localPort}`
  try {
    const greeting = await c.packet()
    c.send(1, sslRequest())
    await c.startTls()
    const auth = nativeToken(PW_NATIVE, greetingScramble(greeting.payload))
    const login = frame(2, handshakeResponse({ caps: CLIENT_CAPS | CAP.SSL, user: account.user, auth }))
    c.socket.write(Buffer.concat([login, frame(0, Buffer.from('\x03SELECT 7', 'latin1'))]))
    assert.equal((await c.packet()).payload[0], 0x00, 'login OK')
    const packets = [await c.packet(), await c.packet(), await c.packet(), await c.packet(), await c.packet()]
    assert.equal(packets[3]!.payload.toString('latin1', 1), '7', 'the pipelined query was answered')
    c.send(0, Buffer.from([0x01])) // COM_QUIT
    assert.ok(await c.closedWithin(5_000), 'closed after QUIT')
  } finally {
    c.destroy()
  }
  const line = await closedLine(client)
  const after = await scrapeUntil(gw, (s) => val(s, M('connections_open'), { route: 'alpha' }) === 0, 'alpha closed')
  const delta = (direction: string) =>
    val(after, M('bytes_total'), { direction, route: 'alpha' }) - val(before, M('bytes_total'), { direction, route: 'alpha' })
  assert.equal(line.outcome, 'ok')
  assert.equal(line.bytesFromClient, delta('client_to_backend'), 'bytes the client sent, counted once')
  assert.equal(line.bytesFromBackend, delta('backend_to_client'))
})

test('no password, in any encoding, ever appears on stdout or stderr', () => {
  // Every session above has been logged (each test waited for its lines); after() checks again once stopped.
  assert.ok(rawOut.includes('connection closed'), 'the capture has the session lines')
  assertNoSecrets()
})
