import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import net from 'node:net'
import mysql from 'mysql2/promise'
import * as mariadb from 'mariadb'
import { waitFor } from '../helpers/wait.js'
import { testEnv, tmpDir } from '../helpers/env.js'
import { mintLeaf } from '../helpers/certs.js'
import { createAccount, harnessMariaDb, startMariaDb, type Account, type MariaDbInstance } from '../helpers/mariadb.js'
import { routeConfig, startEngine, type RunningEngine } from '../helpers/engine.js'

const execFileAsync = promisify(execFile)
const env = testEnv()
const dbA = harnessMariaDb(env)
const ca = readFileSync(env.pki.caCert)
let dbB: MariaDbInstance
let gw: RunningEngine
let clientLeaf: import('../helpers/certs.js').Leaf
let strangerLeaf: import('../helpers/certs.js').Leaf
let userA: Account
let userB: Account
let edB: Account

before(async () => {
  dbB = await startMariaDb({ baseDir: tmpDir('sni-backend-b') })
  const [certA, certB, certC] = await Promise.all([
    mintLeaf(env.pki, 'tenant-a.db.test', { sans: ['DNS:tenant-a.db.test'] }),
    mintLeaf(env.pki, 'tenant-b.db.test', { sans: ['DNS:*.b.db.test', 'DNS:tenant-b.db.test'] }),
    mintLeaf(env.pki, 'tenant-c.db.test', { sans: ['DNS:tenant-c.db.test'] }),
  ])
  clientLeaf = await mintLeaf(env.pki, 'client-c', { client: true })
  strangerLeaf = await mintLeaf(env.pki, 'stranger', { client: true, signer: 'other' })
  userA = await createAccount(dbA, { user: 'sni_a', grant: 'SELECT ON *.*' })
  userB = await createAccount(dbB, { user: 'sni_b', grant: 'SELECT ON *.*' })
  edB = await createAccount(dbB, { user: 'sni_ed', plugin: 'ed25519' })
  await dbB.query("CREATE DATABASE IF NOT EXISTS tenant_b")
  const routeA = routeConfig({
    name: 'tenant-a',
    serverNames: ['tenant-a.db.test'],
    default: true,
    tls: { cert: certA.cert, key: certA.key },
    backendTls: { mode: 'verify-identity', ca: env.pki.caCert, servername: 'localhost' },
  })
  const routeB = routeConfig({
    name: 'tenant-b',
    serverNames: ['tenant-b.db.test', '*.b.db.test'],
    backend: { host: '127.0.0.1', port: dbB.port },
    tls: { cert: certB.cert, key: certB.key },
  })
  const routeC = routeConfig({
    name: 'tenant-c',
    serverNames: ['tenant-c.db.test'],
    tls: { cert: certC.cert, key: certC.key, clientCA: env.pki.caCert },
  })
  gw = await startEngine([routeA, routeB, routeC], { greeting: 'gateway' })
})
after(async () => {
  await gw?.close()
  await dbA.close()
  await dbB?.stop()
})

/** mysql2 sends SNI = the host it dials (never for IPs); dial the gateway's loopback port under a tenant name. */
function viaName(servername: string, account: Account, extra: Record<string, unknown> = {}): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: servername,
    port: gw.port,
    ...account,
    ssl: { ca },
    stream: () => net.connect(gw.port, '127.0.0.1'),
    ...extra,
  } as mysql.ConnectionOptions)
}

async function whereAmI(c: mysql.Connection): Promise<{ port: number; ssl: string }> {
  const [[row]] = await c.query<mysql.RowDataPacket[]>("SELECT @@port AS port, (SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME='Ssl_cipher') AS tls_cipher")
  return { port: Number(row!.port), ssl: String(row!.tls_cipher ?? '') }
}

describe('several routes on one port, chosen by SNI', () => {
  test('mysql2 reaches tenant A (TLS backend leg) and tenant B by server name', async () => {
    const a = await viaName('tenant-a.db.test', userA)
    const b = await viaName('x.b.db.test', userB)
    try {
      const wa = await whereAmI(a)
      const wb = await whereAmI(b)
      assert.equal(wa.port, env.mariadb.port)
      assert.notEqual(wa.ssl, '', 'tenant A backend leg is TLS')
      assert.equal(wb.port, dbB.port)
      assert.equal(wb.ssl, '', 'tenant B backend leg is plain')
      const peer = (b as unknown as { connection: { stream: import('node:tls').TLSSocket } }).connection.stream.getPeerCertificate()
      assert.match(String(peer.subjectaltname), /tenant-b\.db\.test/)
    } finally {
      await a.end()
      await b.end()
    }
  })

  test('ed25519 account on tenant B with the mariadb connector (ssl.servername)', async () => {
    const c = await mariadb.createConnection({ host: gw.host, port: gw.port, ...edB, ssl: { ca, servername: 'tenant-b.db.test' } as never })
    try {
      const rows = await c.query('SELECT @@port AS port')
      assert.equal(Number(rows[0].port), dbB.port)
    } finally {
      await c.end()
    }
  })

  test('wrong password on a tenant gets that backend 1045', async () => {
    await assert.rejects(
      viaName('tenant-b.db.test', { user: userB.user, password: 'bad' }),
      (err: { errno?: number }) => err.errno === 1045
    )
  })

  test('a client without SNI lands on the default route', async () => {
    // mysql2 sends no SNI for an IP address host.
    const c = await mysql.createConnection({ host: '127.0.0.1', port: gw.port, ...userA, ssl: { ca, rejectUnauthorized: false } })
    try {
      assert.equal((await whereAmI(c)).port, env.mariadb.port)
    } finally {
      await c.end()
    }
  })

  test('an IP address sent as the server name (PHP mysqlnd does) counts as no name: the default route', async () => {
    // RFC 6066 forbids it; Node still sends it (with a DEP0123 warning), as mysqlnd does.
    const c = await mariadb.createConnection({
      host: gw.host,
      port: gw.port,
      ...userA,
      ssl: { ca, servername: '127.0.0.1', rejectUnauthorized: false } as never,
    })
    try {
      const rows = await c.query('SELECT @@port AS port')
      assert.equal(Number(rows[0].port), env.mariadb.port)
    } finally {
      await c.end()
    }
    await waitFor(() => gw.logs.some((l) => l.msg === 'connection closed' && l.sni === '127.0.0.1' && l.route === 'tenant-a'), {
      timeoutMs: 5_000,
      what: "the close line names the default route and the client's SNI",
    })
  })

  test('an unknown server name gets 1045 naming it, and is counted', async () => {
    await assert.rejects(
      viaName('nobody.example.test', userA, { ssl: { ca, rejectUnauthorized: false } }),
      (err: { errno?: number; message: string }) => err.errno === 1045 && /nobody\.example\.test/.test(err.message)
    )
    assert.equal(gw.engine.stats()['tenant-a']!.unmatchedSni, 1)
  })

  test('openssl s_client -starttls mysql sees the tenant certificate chosen by SNI', async () => {
    const { stdout } = await execFileAsync(
      'openssl',
      ['s_client', '-starttls', 'mysql', '-connect', `127.0.0.1:${gw.port}`, '-servername', 'tenant-b.db.test', '-CAfile', env.pki.caCert],
      { timeout: 15_000, input: '' } as never
    ).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))
    assert.match(String(stdout), /subject=.*CN\s*=\s*tenant-b\.db\.test/)
    assert.match(String(stdout), /Verify return code: 0 \(ok\)/)
  })

  test('mutual TLS on one tenant of a shared listener: trusted cert in, none or untrusted gets 1045', async () => {
    const withCert = (leaf?: import('../helpers/certs.js').Leaf) =>
      viaName('tenant-c.db.test', userA, {
        ssl: leaf ? { ca, cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) } : { ca },
      })
    const ok = await withCert(clientLeaf)
    try {
      assert.equal((await whereAmI(ok)).port, env.mariadb.port)
    } finally {
      await ok.end()
    }
    for (const leaf of [undefined, strangerLeaf]) {
      await assert.rejects(withCert(leaf), (err: { errno?: number; message: string }) => err.errno === 1045 && /client certificate/.test(err.message))
    }
    // Tenants without clientCA are unaffected by the certificate request.
    const b = await viaName('tenant-b.db.test', userB)
    await b.end()
  })
})
