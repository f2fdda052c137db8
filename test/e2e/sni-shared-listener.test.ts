/**
 * Several tenants on one port through the real CLI (`node bin/gateway.js --config FILE`): routes sharing one
 * listen address by serverNames, each with its own certificate and backend (the harness MariaDB, and a second
 * MariaDB holding a database the harness lacks). `gateway validate` accepts the shared listener and names the
 * file, line and key of an ambiguous one; a busy tenant never fails while another tenant on the same listener
 * is added, changed (backend, then certificate) and removed; metrics and logs carry the route and SNI name.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { X509Certificate, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { copyFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import mysql from 'mysql2/promise'
import { mintLeaf, type Leaf } from '../helpers/certs.js'
import { freePort } from '../helpers/cli.js'
import { testEnv, tmpDir } from '../helpers/env.js'
import { createAccount, harnessMariaDb, startMariaDb, type Account, type MariaDbInstance } from '../helpers/mariadb.js'
import { parseSamples, sampleKey } from '../helpers/prom-text.js'
import { waitFor } from '../helpers/wait.js'
import { startGateway, type GatewayRun } from './support/gateway-run.js'
import { busyTenant, endConn, lineOf, presentedFingerprint, scalar, sniYaml, viaName, type SniRoute } from './support/sni.js'

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'gateway.js')
const env = testEnv()
const dbA = harnessMariaDb(env)
const ca = readFileSync(env.pki.caCert)
/** A database that exists only on tenant B's own backend. */
const ONLY_B = `sni_only_b_${randomBytes(4).toString('hex')}`
let dbB: MariaDbInstance
let user: Account
let certA: Leaf
let certB1: Leaf
let certB2: Leaf
let certC: Leaf

before(async () => {
  const starting = startMariaDb({ baseDir: tmpDir('sni-e2e-b') })
  ;[certA, certB1, certB2, certC] = await Promise.all([
    mintLeaf(env.pki, 'tenant-a.db.test'),
    mintLeaf(env.pki, 'tenant-b.db.test', { sans: ['DNS:tenant-b.db.test', 'DNS:*.b.db.test'] }),
    mintLeaf(env.pki, 'tenant-b.db.test', { sans: ['DNS:tenant-b.db.test', 'DNS:*.b.db.test'] }),
    mintLeaf(env.pki, 'tenant-c.db.test'),
  ])
  dbB = await starting
  // One account that exists on both backends: where a session lands shows in @@port and in the data it sees.
  user = await createAccount(dbA, { user: 'sni_e2e', grant: 'SELECT ON *.*' })
  await dbB.query('CREATE USER ?@? IDENTIFIED BY ?', [user.user, '%', user.password])
  await dbB.query('GRANT SELECT ON *.* TO ?@?', [user.user, '%'])
  await dbB.query(`CREATE DATABASE ${ONLY_B}`)
  await dbB.query(`CREATE TABLE ${ONLY_B}.marker (v VARCHAR(20))`)
  await dbB.query(`INSERT INTO ${ONLY_B}.marker VALUES ('tenant-b data')`)
})
after(async () => {
  await dbA.query('DROP USER IF EXISTS ?@?', [user?.user ?? 'nobody', '%']).catch(() => {})
  await dbA.close()
  await dbB?.stop()
})

const fp = (leaf: Leaf): string => new X509Certificate(readFileSync(leaf.cert)).fingerprint256

function routes() {
  const a: SniRoute = { name: 'tenant-a', backendPort: env.mariadb.port, serverNames: ['tenant-a.db.test'], default: true, cert: certA.cert, key: certA.key }
  const b: SniRoute = { name: 'tenant-b', backendPort: dbB.port, serverNames: ['tenant-b.db.test', '*.b.db.test'], cert: certB1.cert, key: certB1.key }
  const c: SniRoute = { name: 'tenant-c', backendPort: env.mariadb.port, serverNames: ['tenant-c.db.test'], cert: certC.cert, key: certC.key }
  return { a, b, c }
}

/** Where a session landed: the backend's port and whether tenant B's own database is visible there. */
async function landing(c: mysql.Connection): Promise<{ port: number; seesOnlyB: boolean }> {
  const port = Number(await scalar(c, 'SELECT @@port'))
  const n = Number(await scalar(c, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${ONLY_B}'`))
  return { port, seesOnlyB: n === 1 }
}

describe('gateway validate on a shared listener', () => {
  function validate(dir: string, file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, 'validate', '--config', file], { cwd: dir, timeout: 20_000 }, (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0
        resolve({ code: typeof code === 'number' ? code : null, stdout, stderr })
      })
    })
  }

  test('two, then three routes on one address by serverNames: OK', async () => {
    const dir = tmpDir('sni-validate')
    const { a, b, c } = routes()
    const port = await freePort()
    await writeFile(path.join(dir, 'two.yaml'), sniYaml({ listenPort: port, routes: [a, c] }))
    await writeFile(path.join(dir, 'three.yaml'), sniYaml({ listenPort: port, routes: [a, b, c] }))
    assert.deepEqual(await validate(dir, 'two.yaml'), { code: 0, stdout: 'two.yaml: OK (2 routes on 1 listener)\n', stderr: '' })
    assert.deepEqual(await validate(dir, 'three.yaml'), { code: 0, stdout: 'three.yaml: OK (3 routes on 1 listener)\n', stderr: '' })
  })

  test('ambiguous sets are refused with file:line:col and key: two defaults, a name twice, a route without serverNames; an unquoted wildcard too', async () => {
    const dir = tmpDir('sni-validate-bad')
    const { a, b, c } = routes()
    const port = await freePort()
    const key = `127.0.0.1:${port}`
    const aLine = lineOf(sniYaml({ listenPort: port, routes: [a] }), '- name: tenant-a').line
    const cases: Array<{ file: string; text: string; expect: (text: string) => string[] }> = [
      {
        file: 'two-defaults.yaml',
        text: sniYaml({ listenPort: port, routes: [a, { ...b, default: true }, c] }),
        expect: (t) => {
          const at = lineOf(t, 'true', '- name: tenant-b')
          return [`two-defaults.yaml:${at.line}:${at.col} routes[1].default: routes[0] "tenant-a" (line ${aLine}) is already the default route of ${key}`]
        },
      },
      {
        file: 'same-name.yaml',
        text: sniYaml({ listenPort: port, routes: [a, b, { ...c, serverNames: ['tenant-c.db.test', 'tenant-a.db.test'] }] }),
        expect: (t) => {
          const at = lineOf(t, '"tenant-a.db.test"', '- name: tenant-c')
          return [`same-name.yaml:${at.line}:${at.col} routes[2].serverNames[1]: "tenant-a.db.test" is also served by routes[0] "tenant-a" (line ${aLine}) on ${key}`]
        },
      },
      {
        file: 'unnamed.yaml',
        text: sniYaml({ listenPort: port, routes: [a, { ...b, serverNames: undefined }, c] }),
        // Only tenant-b lacks names: tenant-c, well-formed, is not blamed.
        expect: (t) => {
          const at = lineOf(t, key, '- name: tenant-b')
          return [
            `unnamed.yaml:${at.line}:${at.col} routes[1].listen: ${key} is also the listen address of routes[0] "tenant-a" (line ${aLine}); ` +
              'routes may share a listener only when every one of them declares serverNames',
          ]
        },
      },
      {
        // The likeliest typo with wildcards: unquoted, `*.b.db.test` is a YAML alias.
        file: 'unquoted-wildcard.yaml',
        text: sniYaml({ listenPort: port, routes: [a, b, c] }).replace('"*.b.db.test"', '*.b.db.test'),
        expect: (t) => {
          const at = lineOf(t, '*.b.db.test')
          return [
            `unquoted-wildcard.yaml:${at.line}:${at.col}: invalid YAML: Unresolved alias (the anchor must be set before the alias): .b.db.test ` +
              '(quote wildcard server names: "*.example.com")',
          ]
        },
      },
    ]
    for (const k of cases) {
      await writeFile(path.join(dir, k.file), k.text)
      const result = await validate(dir, k.file)
      assert.equal(result.code, 3, `${k.file}: exit code (stdout ${result.stdout})`)
      assert.equal(result.stdout, '')
      assert.deepEqual(result.stderr.trimEnd().split('\n'), k.expect(k.text), k.file)
    }
  })
})

/**
 * Saves the file, reloads, and checks the shared listener's process was NOT replaced: tenant changes are
 * applied inside it, so tenant A's open session is never subject to a drain.
 */
async function reloadWith(gw: GatewayRun, configPath: string, text: string, trigger: 'file' | 'SIGHUP'): Promise<void> {
  const pidBefore = await pidOf(gw, 'tenant-a')
  const since = gw.mark()
  await writeFile(configPath, text)
  if (trigger === 'SIGHUP') gw.signal('SIGHUP')
  const applied = await gw.waitForLog((l) => l.msg === 'reload applied', `reload applied (${trigger})`, { since })
  assert.equal(applied.trigger, trigger)
  const pidAfter = await pidOf(gw, 'tenant-a')
  assert.ok(pidAfter && pidAfter === pidBefore, `a change to tenant B is applied in place (${pidBefore} -> ${pidAfter})`)
  await gw.waitForLog((l) => l.msg === 'routes updated in place', 'routes updated in place', { since })
}

async function pidOf(gw: GatewayRun, route: string): Promise<number | undefined> {
  return (await gw.routes()).find((r) => r.name === route)?.pid
}

const CYCLES = 4

test(`busy tenant A sees no failed query or connect while tenant B on the same listener is added, changed and removed (${CYCLES}x)`, async (t) => {
  const dir = tmpDir('sni-busy')
  const configPath = path.join(dir, 'gateway.yaml')
  const [port, adminPort] = [await freePort(), await freePort()]
  const { b, c } = routes()
  // A short drainTimeout: if a reload of tenant B drained A's process, A's open session would be cut.
  const a: SniRoute = { ...routes().a, drainTimeout: '1s' }
  const yaml = (rs: SniRoute[]) => sniYaml({ listenPort: port, adminPort, routes: rs })
  await writeFile(configPath, yaml([a, c]))
  const gw = await startGateway(configPath, { adminPort })
  const busy = busyTenant(() => viaName(port, 'tenant-a.db.test', user, { ca }))
  const tenant = (name: string, tlsOpts: Record<string, unknown> = { ca }) => viaName(port, name, user, tlsOpts)
  const expectB = async (name: string, want: { port: number; seesOnlyB: boolean; cert: Leaf }) => {
    const s = await tenant(name)
    try {
      assert.deepEqual(await landing(s), { port: want.port, seesOnlyB: want.seesOnlyB }, `${name} landed on the wrong backend`)
      assert.equal(presentedFingerprint(s), fp(want.cert), `${name}: certificate`)
      if (want.seesOnlyB) assert.equal(await scalar(s, `SELECT v FROM ${ONLY_B}.marker`), 'tenant-b data')
    } finally {
      await endConn(s)
    }
  }
  try {
    await waitFor(() => busy.counts.newConnections >= 3 || busy.failures.length > 0, { timeoutMs: 10_000, what: 'traffic on tenant A' })
    assert.deepEqual(busy.failures, [])
    // Tenant B is absent: its name is refused (never sent to the default route).
    await assert.rejects(tenant('tenant-b.db.test', { ca, rejectUnauthorized: false }), (e: { errno?: number; message: string }) =>
      e.errno === 1045 && /no route for server name 'tenant-b\.db\.test'/.test(e.message)
    )
    for (let i = 0; i < CYCLES; i++) {
      const trigger = i % 2 === 0 ? 'SIGHUP' : 'file'
      // Added: reachable by its exact name and by its wildcard, on its own backend, with its own certificate.
      await reloadWith(gw, configPath, yaml([a, b, c]), trigger)
      await expectB('tenant-b.db.test', { port: dbB.port, seesOnlyB: true, cert: certB1 })
      await expectB(`x${i}.b.db.test`, { port: dbB.port, seesOnlyB: true, cert: certB1 })
      // Changed backend: now the harness server, which lacks B's database.
      await reloadWith(gw, configPath, yaml([a, { ...b, backendPort: env.mariadb.port }, c]), trigger)
      await expectB('tenant-b.db.test', { port: env.mariadb.port, seesOnlyB: false, cert: certB1 })
      // Changed certificate (different file): new handshakes present it.
      await reloadWith(gw, configPath, yaml([a, { ...b, cert: certB2.cert, key: certB2.key }, c]), trigger)
      await expectB('tenant-b.db.test', { port: dbB.port, seesOnlyB: true, cert: certB2 })
      // Removed: 1045 naming the server name; the other tenants still answer.
      await reloadWith(gw, configPath, yaml([a, c]), trigger)
      await assert.rejects(tenant('tenant-b.db.test', { ca, rejectUnauthorized: false }), (e: { errno?: number; message: string }) =>
        e.errno === 1045 && /no route for server name 'tenant-b\.db\.test'/.test(e.message)
      )
      const sc = await tenant('tenant-c.db.test')
      assert.equal(presentedFingerprint(sc), fp(certC))
      await endConn(sc)
    }
    // Rotation in place (same paths, new content) for tenant B only: no new process, new handshakes on B get
    // the new certificate, A and C keep theirs.
    const bCert = path.join(dir, 'tenant-b.crt')
    const bKey = path.join(dir, 'tenant-b.key')
    await Promise.all([copyFile(certB1.cert, bCert), copyFile(certB1.key, bKey)])
    await reloadWith(gw, configPath, yaml([a, { ...b, cert: bCert, key: bKey }, c]), 'SIGHUP')
    await expectB('tenant-b.db.test', { port: dbB.port, seesOnlyB: true, cert: certB1 })
    const pid = await pidOf(gw, 'tenant-a')
    const since = gw.mark()
    await copyFile(certB2.key, `${bKey}.tmp`)
    await copyFile(certB2.cert, `${bCert}.tmp`)
    await rename(`${bKey}.tmp`, bKey)
    await rename(`${bCert}.tmp`, bCert)
    await gw.waitForLog((l) => l.msg === 'tls material reloaded' && l.route === 'tenant-b', 'tenant-b tls reload', { since })
    await expectB('tenant-b.db.test', { port: dbB.port, seesOnlyB: true, cert: certB2 })
    const sa = await tenant('tenant-a.db.test')
    assert.equal(presentedFingerprint(sa), fp(certA))
    await endConn(sa)
    assert.equal(await pidOf(gw, 'tenant-a'), pid, 'certificate rotation restarts nothing')
    assert.ok(!gw.logs.slice(since).some((l) => l.msg === 'tls material reloaded' && l.route !== 'tenant-b'), 'only B reloaded')

    const seen = busy.counts
    await waitFor(() => busy.counts.newConnections >= seen.newConnections + 3, { timeoutMs: 10_000, what: 'tenant A still serving' })
  } finally {
    await busy.stop()
    const { code } = await gw.stop()
    assert.equal(code, 0, `gateway exit code; stderr: ${gw.stderr().slice(-2000)}`)
  }
  t.diagnostic(`tenant A: ${JSON.stringify(busy.counts)}`)
  assert.deepEqual(busy.failures, [], 'not one failed query or connect on tenant A')
  assert.equal(busy.sessionIds.size, 1, 'the persistent session stayed the same backend session')
  assert.ok(busy.counts.persistentQueries > 100, `persistent session kept querying (${busy.counts.persistentQueries})`)
  assert.ok(busy.counts.newConnections >= 20, `new connections kept succeeding (${busy.counts.newConnections})`)
})

test('metrics and logs carry the chosen route and the SNI name; an unknown name is counted on the default route', async () => {
  const dir = tmpDir('sni-observe')
  const configPath = path.join(dir, 'gateway.yaml')
  const [port, adminPort] = [await freePort(), await freePort()]
  const { a, b, c } = routes()
  await writeFile(configPath, sniYaml({ listenPort: port, adminPort, routes: [a, b, c] }))
  const gw = await startGateway(configPath, { adminPort })
  const scrape = async () => parseSamples((await gw.admin('/metrics')).body)
  const unmatched = sampleKey('mysqlgw_sni_unmatched_total', { route: 'tenant-a' })
  try {
    const before = (await scrape()).get(unmatched) ?? 0
    await assert.rejects(viaName(port, 'nobody.db.test', user, { ca, rejectUnauthorized: false }), (e: { errno?: number; message: string }) =>
      e.errno === 1045 && /no route for server name 'nobody\.db\.test'/.test(e.message)
    )
    const s = await viaName(port, 'tenant-b.db.test', user, { ca })
    assert.equal(Number(await scalar(s, 'SELECT @@port')), dbB.port)
    await endConn(s)
    // mysql2 sends no SNI for an IP: the default route serves it.
    const noSni = await mysql.createConnection({ host: '127.0.0.1', port, ...user, ssl: { ca, rejectUnauthorized: false } })
    assert.equal(Number(await scalar(noSni, 'SELECT @@port')), env.mariadb.port)
    await endConn(noSni)

    await waitFor(async () => (await scrape()).get(unmatched) === before + 1, { timeoutMs: 5_000, what: `${unmatched} = ${before + 1}` })
    const samples = await scrape()
    assert.equal(samples.get(sampleKey('mysqlgw_sni_unmatched_total', { route: 'tenant-b' })) ?? 0, 0)
    assert.equal(samples.get(sampleKey('mysqlgw_connections_closed_total', { route: 'tenant-b', outcome: 'ok' })), 1)
    assert.equal(samples.get(sampleKey('mysqlgw_connections_closed_total', { route: 'tenant-a', outcome: 'ok' })), 1)
    assert.equal(samples.get(sampleKey('mysqlgw_connections_closed_total', { route: 'tenant-c', outcome: 'ok' })), 0)

    const closed = (sni: string | undefined, route: string) =>
      gw.waitForLog((l) => l.msg === 'connection closed' && l.sni === sni && l.route === route, `connection closed sni=${sni} route=${route}`, { timeoutMs: 5_000 })
    const lineB = await closed('tenant-b.db.test', 'tenant-b')
    assert.equal(lineB.outcome, 'ok')
    assert.equal(lineB.user, user.user)
    const lineUnknown = await closed('nobody.db.test', 'tenant-a')
    assert.equal(lineUnknown.outcome, 'client_error')
    assert.equal(lineUnknown.errorCode, 1045)
    const lineNoSni = await closed(undefined, 'tenant-a')
    assert.equal(lineNoSni.outcome, 'ok')
    await gw.waitForLog((l) => l.msg === 'no route for server name' && l.sni === 'nobody.db.test', 'no route log line', { timeoutMs: 5_000 })
  } finally {
    const { code } = await gw.stop()
    assert.equal(code, 0, `gateway exit code; stderr: ${gw.stderr().slice(-2000)}`)
  }
})
