/**
 * Backend TLS (backendTls.mode required | verify-ca | verify-identity) against the harness MariaDB, which has
 * TLS with a certificate for localhost from the harness CA: the backend session really is on TLS, a CA or
 * name that does not match is an ERR 1105 naming the route (never the backend's address), and an account with
 * REQUIRE SSL works only over a TLS backend leg.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import mysql from 'mysql2/promise'
import * as mariadb from 'mariadb'
import { testEnv } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { runMariadbCli } from '../helpers/cli.js'
import { routeConfig, startEngine, type RouteOverrides, type RunningEngine } from '../helpers/engine.js'
import { waitFor } from '../helpers/wait.js'

const env = testEnv()
const db = harnessMariaDb(env)
const ca = readFileSync(env.pki.caCert)
const engines: RunningEngine[] = []
let native: Account
let ed: Account
let sslOnly: Account

async function engine(overrides: RouteOverrides): Promise<RunningEngine> {
  const gw = await startEngine(routeConfig(overrides))
  engines.push(gw)
  return gw
}

before(async () => {
  ;[native, ed, sslOnly] = await Promise.all([
    createAccount(db, { user: 'btls' }),
    createAccount(db, { user: 'btls_ed', plugin: 'ed25519' }),
    createAccount(db, { user: 'btls_req', requireSsl: true }),
  ])
})
after(async () => {
  for (const gw of engines) await gw.close()
  await db.close()
})

async function backendCipher(gw: RunningEngine, acc: Account, clientSsl = true): Promise<string> {
  const c = await mysql.createConnection({ host: gw.host, port: gw.port, ...acc, ...(clientSsl ? { ssl: { ca } } : {}) })
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    return String(rows[0]!.Value)
  } finally {
    await c.end()
  }
}

describe('backend TLS that verifies', () => {
  for (const [mode, backendTls] of [
    ['verify-identity', { mode: 'verify-identity', ca: env.pki.caCert, servername: 'localhost' }],
    ['verify-ca', { mode: 'verify-ca', ca: env.pki.caCert }],
    ['required', { mode: 'required' }],
  ] as const) {
    test(`${mode}: the backend session has an Ssl_cipher and the log says backendTls`, async () => {
      const gw = await engine({ name: `b-${mode}`, backendTls })
      const cipher = await backendCipher(gw, native)
      assert.notEqual(cipher, '', 'backend leg is on TLS')
      const closed = await waitFor(() => gw.logs.find((l) => l.msg === 'connection closed' && l.user === native.user), {
        timeoutMs: 3000,
        what: 'closed line',
      })
      assert.equal(closed.backendTls, true)
      assert.equal(closed.outcome, 'ok')
    })
  }

  test('verify-identity: ed25519 (auth switch) and the CLI work over both TLS legs', async () => {
    const gw = await engine({
      name: 'b-ident-more',
      backendTls: { mode: 'verify-identity', ca: env.pki.caCert, servername: 'localhost' },
    })
    const m = await mariadb.createConnection({ connectTimeout: 10_000, host: gw.host, port: gw.port, ...ed, ssl: { ca } })
    try {
      const rows = await m.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
      assert.notEqual(rows[0].Value, '')
    } finally {
      await m.end()
    }
    const cli = await runMariadbCli(
      ['-h127.0.0.1', '-P', String(gw.port), '-u', ed.user, '--ssl', `--ssl-ca=${env.pki.caCert}`]
        .concat(['-N', '-B', '-e', "SHOW SESSION STATUS LIKE 'Ssl_version'"]),
      { password: ed.password }
    )
    assert.equal(cli.code, 0, cli.stderr)
    assert.match(cli.stdout, /^Ssl_version\tTLSv1\.[23]$/m)
  })

  test('tls.mode preferred + backend TLS: a plaintext client still gets a TLS backend session', async () => {
    // The client's HandshakeResponse is seq 1; towards the backend the gateway's SSLRequest takes seq 1 and
    // the HandshakeResponse goes as seq 2.
    const gw = await engine({
      name: 'b-pref',
      tls: { mode: 'preferred' },
      backendTls: { mode: 'verify-identity', ca: env.pki.caCert, servername: 'localhost' },
    })
    assert.notEqual(await backendCipher(gw, native, false), '')
    const m = await mariadb.createConnection({ connectTimeout: 10_000, host: gw.host, port: gw.port, ...ed })
    await m.end()
  })
})

describe('backend TLS that fails verification', () => {
  const cases: Array<[string, RouteOverrides['backendTls']]> = [
    ['verify-ca with a CA that did not sign the server', { mode: 'verify-ca', ca: env.pki.otherCaCert }],
    [
      'verify-identity with a name the certificate lacks',
      { mode: 'verify-identity', ca: env.pki.caCert, servername: 'db.example.test' },
    ],
  ]
  for (const [name, backendTls] of cases) {
    test(`${name}: ERR 1105 naming the route, not the address`, async () => {
      const routeName = `bfail-${engines.length}`
      const gw = await engine({ name: routeName, backendTls })
      await assert.rejects(
        mysql.createConnection({ host: gw.host, port: gw.port, ...native, ssl: { ca } }),
        (err: { errno?: number; sqlState?: string; message: string }) => {
          assert.equal(err.errno, 1105, err.message)
          assert.equal(err.sqlState, 'HY000')
          assert.match(err.message, new RegExp(`route ${routeName}\\b`))
          assert.doesNotMatch(err.message, /127\.0\.0\.1/)
          assert.doesNotMatch(err.message, new RegExp(`\\b${env.mariadb.port}\\b`))
          return true
        }
      )
      // The CLI prints the gateway's message, not a protocol error.
      const cli = await runMariadbCli(
        ['-h127.0.0.1', '-P', String(gw.port), '-u', native.user, '--ssl', `--ssl-ca=${env.pki.caCert}`, '-e', 'SELECT 1'],
        { password: native.password }
      )
      assert.equal(cli.code, 1)
      assert.match(cli.stderr, new RegExp(`ERROR 1105 \\(HY000\\).*route ${routeName}`))
      const closed = await waitFor(() => gw.logs.find((l) => l.msg === 'connection closed'), {
        timeoutMs: 3000,
        what: 'closed line',
      })
      assert.equal(closed.outcome, 'backend_unavailable')
      assert.equal(closed.errorCode, 1105)
      assert.ok(!gw.logs.some((l) => l.msg === 'authenticated'))
    })
  }
})

describe('account with REQUIRE SSL', () => {
  test('works through a TLS backend leg', async () => {
    const backendTls = { mode: 'verify-identity', ca: env.pki.caCert, servername: 'localhost' } as const
    const gw = await engine({ name: 'req-tls', backendTls })
    assert.notEqual(await backendCipher(gw, sslOnly), '')
  })

  test("fails through a plain backend leg with the server's own error, although the client is on TLS", async () => {
    const gw = await engine({ name: 'req-plain' })
    await assert.rejects(
      mysql.createConnection({ host: gw.host, port: gw.port, ...sslOnly, ssl: { ca } }),
      (err: { errno?: number; sqlState?: string; message: string }) => {
        assert.equal(err.errno, 1045, err.message)
        assert.equal(err.sqlState, '28000')
        assert.match(err.message, new RegExp(`Access denied for user '${sslOnly.user}'`))
        return true
      }
    )
  })
})
