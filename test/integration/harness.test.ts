// Proves the test harness itself: the shared MariaDB speaks TLS with a cert from the run's PKI,
// real clients (mysql2, the mariadb connector, the mariadb CLI) can log in, and the PKI helpers
// produce certs that work for mutual TLS. If these fail, every gateway test result is suspect.
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import tls from 'node:tls'
import { after, before, describe, test } from 'node:test'
import * as mariadb from 'mariadb'
import mysql from 'mysql2/promise'
import { mintLeaf } from '../helpers/certs.js'
import { runMariadbCli } from '../helpers/cli.js'
import { testEnv, tmpDir, type TestEnv } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type MariaDbClient } from '../helpers/mariadb.js'
import { once, waitFor } from '../helpers/wait.js'

const CONNECT_TIMEOUT_MS = 10_000

describe('test harness', { timeout: 60_000 }, () => {
  let env: TestEnv
  let db: MariaDbClient

  before(() => {
    env = testEnv()
    db = harnessMariaDb(env)
  })
  after(() => db?.close())

  test('testEnv() fails loudly, naming the variables, when run outside the harness', () => {
    assert.throws(() => testEnv({}), /GW_TEST_MARIADB_PORT.*run-tests/s)
    assert.throws(() => testEnv({ ...process.env, GW_TEST_MARIADB_PORT: 'x' }), /not a TCP port/)
  })

  test('mysql2 over TCP negotiates TLS, verifying the server cert against the run CA', async () => {
    const conn = await mysql.createConnection({
      host: env.mariadb.host,
      port: env.mariadb.port,
      user: 'root',
      password: env.mariadb.rootPassword,
      ssl: { ca: readFileSync(env.pki.caCert, 'utf8') },
      connectTimeout: CONNECT_TIMEOUT_MS,
    })
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_%'")
      const status = Object.fromEntries(rows.map((r) => [r.Variable_name, r.Value]))
      assert.ok(status.Ssl_cipher, 'Ssl_cipher must be non-empty on a TLS session')
      assert.match(status.Ssl_version, /^TLSv1\.[23]$/)
    } finally {
      await conn.end()
    }
  })

  test('a client trusting only the unrelated CA refuses the harness server', async () => {
    await assert.rejects(
      mysql.createConnection({
        host: env.mariadb.host,
        port: env.mariadb.port,
        user: 'root',
        password: env.mariadb.rootPassword,
        ssl: { ca: readFileSync(env.pki.otherCaCert, 'utf8') },
        connectTimeout: CONNECT_TIMEOUT_MS,
      }),
      /certificate|issuer|verify/i
    )
  })

  test('an ed25519 account logs in with the mariadb connector; a wrong password does not', async () => {
    const account = await createAccount(db, { plugin: 'ed25519' })
    const [row] = await db.query('SELECT plugin FROM mysql.user WHERE user = ?', [account.user])
    assert.equal(row.plugin, 'ed25519')

    const opts = { host: env.mariadb.host, port: env.mariadb.port, connectTimeout: CONNECT_TIMEOUT_MS }
    const conn = await mariadb.createConnection({ ...opts, user: account.user, password: account.password })
    try {
      const [me] = await conn.query('SELECT CURRENT_USER() AS me')
      assert.equal(me.me, `${account.user}@%`)
    } finally {
      await conn.end()
    }
    await assert.rejects(
      mariadb.createConnection({ ...opts, user: account.user, password: `${account.password}x` }),
      (err: { errno?: number }) => err.errno === 1045
    )
  })

  test('a REQUIRE SSL account is refused in plaintext and accepted over verified TLS', async () => {
    const account = await createAccount(db, { requireSsl: true })
    const opts = {
      host: env.mariadb.host,
      port: env.mariadb.port,
      user: account.user,
      password: account.password,
      connectTimeout: CONNECT_TIMEOUT_MS,
    }
    await assert.rejects(mariadb.createConnection(opts), (err: { errno?: number }) => err.errno === 1045)
    const conn = await mariadb.createConnection({ ...opts, ssl: { ca: readFileSync(env.pki.caCert, 'utf8') } })
    try {
      const [row] = await conn.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
      assert.ok(row.Value)
    } finally {
      await conn.end()
    }
  })

  test('the mariadb CLI runs SELECT 1 over TCP, in plaintext and with verified TLS', async () => {
    const base = ['--protocol=TCP', '-h', env.mariadb.host, '-P', String(env.mariadb.port), '-u', 'root']
    const batch = ['--batch', '--skip-column-names']
    const password = env.mariadb.rootPassword

    const plain = await runMariadbCli([...base, ...batch, '-e', 'SELECT 1'], { password })
    assert.equal(plain.code, 0, plain.stderr)
    assert.equal(plain.stdout.trim(), '1')

    const tlsArgs = ['--ssl', `--ssl-ca=${env.pki.caCert}`, '--ssl-verify-server-cert']
    const secure = await runMariadbCli([...base, ...tlsArgs, ...batch], {
      password,
      input: "SELECT 1;\nSHOW SESSION STATUS LIKE 'Ssl_cipher';\n",
    })
    assert.equal(secure.code, 0, secure.stderr)
    assert.match(secure.stdout, /^1\nSsl_cipher\t\S+\n$/)

    const denied = await runMariadbCli([...base, ...batch, '-e', 'SELECT 1'], { password: 'wrong' })
    assert.notEqual(denied.code, 0)
    assert.match(denied.stderr, /Access denied/)
  })

  test('statusVar reads SHOW GLOBAL STATUS', async () => {
    assert.ok(Number(await db.statusVar('Uptime')) > 0)
    assert.equal(await db.statusVar('No_such_status_variable'), undefined)
  })

  test('minted leaves: tenant server certs by SAN, ECDSA keys, CA-bound issuers', async () => {
    const dir = tmpDir('harness-certs')
    const ca = new X509Certificate(readFileSync(env.pki.caCert))
    const other = new X509Certificate(readFileSync(env.pki.otherCaCert))

    const tenant = await mintLeaf(env.pki, 'tenant-a.db.test', { dir })
    const tenantCert = new X509Certificate(readFileSync(tenant.cert))
    assert.equal(tenantCert.checkHost('tenant-a.db.test'), 'tenant-a.db.test')
    assert.equal(tenantCert.checkHost('tenant-b.db.test'), undefined)
    assert.ok(tenantCert.verify(ca.publicKey))
    assert.ok(!tenantCert.verify(other.publicKey))
    assert.equal(path.dirname(tenant.key), dir)
    assert.equal(statSync(tenant.key).mode & 0o077, 0, 'private keys must not be group/world readable')

    const ec = await mintLeaf(env.pki, 'ec.db.test', { dir, keyType: 'ecdsa-p256', sans: ['ec.db.test', '127.0.0.2'] })
    const ecCert = new X509Certificate(readFileSync(ec.cert))
    assert.equal(ecCert.publicKey.asymmetricKeyType, 'ec')
    assert.equal(ecCert.checkIP('127.0.0.2'), '127.0.0.2')

    const server = new X509Certificate(readFileSync(env.pki.cert))
    assert.equal(server.checkHost('localhost'), 'localhost')
    assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1')
  })

  test('minted client certs work for mutual TLS; one from the unrelated CA is not trusted', async () => {
    const dir = tmpDir('harness-mtls')
    const serverLeaf = await mintLeaf(env.pki, 'tenant-a.db.test', { dir })
    const good = await mintLeaf(env.pki, 'client-a', { dir, client: true })
    const rogue = await mintLeaf(env.pki, 'client-rogue', { dir, client: true, signer: 'other' })
    assert.equal(rogue.issuerCert, env.pki.otherCaCert)

    // Not rejectUnauthorized: the server reports its verdict instead of hanging up, so the test
    // can tell "untrusted issuer" apart from any other handshake failure.
    const server = tls.createServer({
      cert: readFileSync(serverLeaf.cert),
      key: readFileSync(serverLeaf.key),
      ca: readFileSync(env.pki.caCert),
      requestCert: true,
      rejectUnauthorized: false,
    })
    server.on('secureConnection', (s) => {
      const cn = String(s.getPeerCertificate().subject?.CN)
      s.end(JSON.stringify({ cn, authorized: s.authorized, error: s.authorizationError ?? null }))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening', 5_000)
    const { port } = server.address() as { port: number }
    const verdict = async (leaf: { cert: string; key: string }) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'tenant-a.db.test',
        ca: readFileSync(env.pki.caCert),
        cert: readFileSync(leaf.cert),
        key: readFileSync(leaf.key),
      })
      let body = ''
      socket.setEncoding('utf8').on('data', (d: string) => (body += d))
      try {
        await once(socket, 'end', 5_000)
      } finally {
        socket.destroy()
      }
      return JSON.parse(body) as { cn: string; authorized: boolean; error: string | null }
    }
    try {
      assert.deepEqual(await verdict(good), { cn: 'client-a', authorized: true, error: null })
      const bad = await verdict(rogue)
      assert.equal(bad.cn, 'client-rogue')
      assert.equal(bad.authorized, false)
      assert.match(String(bad.error), /^UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT)/)
    } finally {
      server.close()
    }
  })

  test('waitFor returns the first truthy value and names the condition on timeout', async () => {
    let n = 0
    assert.equal(await waitFor(() => ++n >= 3 && n, { timeoutMs: 2_000, intervalMs: 1, what: 'n to reach 3' }), 3)
    await assert.rejects(
      waitFor(() => false, { timeoutMs: 100, intervalMs: 10, what: 'the impossible' }),
      /timed out after 100 ms waiting for the impossible/
    )
    await assert.rejects(
      waitFor(() => new Promise(() => {}), { timeoutMs: 100, what: 'a hung probe' }),
      /waiting for a hung probe/
    )
  })
})
