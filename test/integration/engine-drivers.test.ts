/**
 * Real drivers through a TLS-required transparent route: mysql2, the `mariadb` npm connector and the `mariadb`
 * command-line client, each with a mysql_native_password and a client_ed25519 account, good and wrong
 * password; the client really is on TLS; the 'connection closed' log line carries every field an operator
 * needs; and no password ever reaches the logs.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import tls from 'node:tls'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import mysql from 'mysql2/promise'
import * as mariadb from 'mariadb'
import { testEnv } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { runMariadbCli } from '../helpers/cli.js'
import { routeConfig, startEngine, type RunningEngine } from '../helpers/engine.js'
import { waitFor } from '../helpers/wait.js'

const env = testEnv()
const db = harnessMariaDb(env)
const ca = readFileSync(env.pki.caCert)
let gw: RunningEngine
const accounts: Record<'native' | 'ed25519', Account> = {} as never
/** Every password used in this file, good or wrong: none may appear in the logs. */
const secrets: string[] = []
const WRONG = 'Wr0ng-pa55word-that-must-not-be-logged'

before(async () => {
  const [n, e] = await Promise.all([
    createAccount(db, { user: 'drv_nat', plugin: 'native' }),
    createAccount(db, { user: 'drv_ed', plugin: 'ed25519' }),
  ])
  accounts.native = n
  accounts.ed25519 = e
  secrets.push(n.password, e.password, WRONG)
  gw = await startEngine(routeConfig({ name: 'drivers' }))
})
after(async () => {
  await gw.close()
  await db.close()
})

/**
 * MariaDB client_ed25519 for mysql2 (which has no built-in support; its authPlugins option is the hook).
 * Written here from the algorithm, independently of the connector and the gateway: MariaDB signs the 32-byte
 * nonce with Ed25519 where the secret "seed" is the password itself (az = SHA-512(password), any length), so
 * node:crypto's seed-based keys cannot be used. Plain BigInt arithmetic on extended twisted Edwards points.
 */
const P = 2n ** 255n - 19n
const L = 2n ** 252n + 27742317777372353535851937790883648493n
const mod = (a: bigint, m = P): bigint => ((a % m) + m) % m
function powMod(b: bigint, e: bigint): bigint {
  let r = 1n
  for (b = mod(b); e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P
  return r
}
const D2 = mod(2n * -121665n * powMod(121666n, P - 2n))
type Point = [bigint, bigint, bigint, bigint]
const BASE: Point = (() => {
  const x = 15112221349535400772501151409588531511454012693041857206046113283949847762202n
  const y = 46316835694926478169428394003475163141307993866256225615783033603165251855960n
  return [x, y, 1n, mod(x * y)]
})()
function add([X1, Y1, Z1, T1]: Point, [X2, Y2, Z2, T2]: Point): Point {
  const a = mod((Y1 - X1) * (Y2 - X2))
  const b = mod((Y1 + X1) * (Y2 + X2))
  const c = mod(T1 * D2 * T2)
  const d = mod(2n * Z1 * Z2)
  const [e, f, g, h] = [b - a, d - c, d + c, b + a]
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)]
}
function mul(k: bigint): Point {
  let r: Point = [0n, 1n, 1n, 0n]
  for (let q = BASE; k > 0n; k >>= 1n, q = add(q, q)) if (k & 1n) r = add(r, q)
  return r
}
const leToInt = (b: Buffer): bigint => BigInt(`0x${Buffer.from(b).reverse().toString('hex') || '0'}`)
const intToLe32 = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse()
function encodePoint([X, Y, Z]: Point): Buffer {
  const zi = powMod(Z, P - 2n)
  const out = intToLe32(mod(Y * zi))
  out[31]! |= Number(mod(X * zi) & 1n) << 7
  return out
}
const sha512 = (...parts: Buffer[]): Buffer => createHash('sha512').update(Buffer.concat(parts)).digest()
function mariadbEd25519(password: string, nonce: Buffer): Buffer {
  const az = sha512(Buffer.from(password, 'utf8'))
  az[0]! &= 248
  az[31]! &= 63
  az[31]! |= 64
  const a = leToInt(az.subarray(0, 32))
  const r = mod(leToInt(sha512(az.subarray(32), nonce)), L)
  const R = encodePoint(mul(r))
  const h = mod(leToInt(sha512(R, encodePoint(mul(a)), nonce)), L)
  return Buffer.concat([R, intToLe32(mod(r + h * a, L))])
}
const ed25519Plugin = (password: string) => ({
  authPlugins: { client_ed25519: () => (data: Buffer) => mariadbEd25519(password, data.subarray(0, 32)) },
})

/** Highest connection id the gateway has assigned so far: sessions accepted later have larger ids. */
function connMark(): number {
  return Math.max(0, ...gw.logs.map((l) => Number(l.conn) || 0))
}

/** The closed log lines of sessions accepted after `mark` that logged in as `user`, oldest first. */
function closedLines(user: string, mark = 0): Array<Record<string, unknown>> {
  return gw.logs
    .filter((l) => l.msg === 'connection closed' && l.user === user && Number(l.conn) > mark)
    .sort((a, b) => Number(a.conn) - Number(b.conn))
}

async function waitClosed(user: string, mark: number, count: number): Promise<Array<Record<string, unknown>>> {
  return waitFor(() => (closedLines(user, mark).length >= count ? closedLines(user, mark) : undefined), {
    timeoutMs: 5000,
    what: `${count} 'connection closed' line(s) for ${user}`,
  })
}

/** Connection options for `acc` through the gateway with the wrong password. */
const wrong = (acc: Account) => ({ host: gw.host, port: gw.port, user: acc.user, password: WRONG })

const isAccessDenied = (user: string) => (err: { errno?: number; sqlState?: string; message: string }) => {
  assert.equal(err.errno, 1045, err.message)
  assert.equal(err.sqlState, '28000')
  assert.match(err.message, new RegExp(`Access denied for user '${user}'`))
  return true
}

for (const plugin of ['native', 'ed25519'] as const) {
  describe(`${plugin} account`, () => {
    test('mysql2: logs in on TLS, queries, wrong password gets the server 1045', async () => {
      const acc = accounts[plugin]
      const plugins = ed25519Plugin(acc.password)
      // Control: the same client code logs in directly, so a failure below is the gateway's.
      const direct = await mysql.createConnection({ host: '127.0.0.1', port: env.mariadb.port, ...acc, ssl: { ca }, ...plugins })
      await direct.end()
      const c = await mysql.createConnection({ host: gw.host, port: gw.port, ...acc, ssl: { ca }, ...plugins })
      try {
        const stream = (c as unknown as { connection: { stream: tls.TLSSocket } }).connection.stream
        assert.ok(stream instanceof tls.TLSSocket)
        assert.match(stream.getCipher().version, /^TLSv1\.[23]$/)
        assert.ok(stream.getCipher().name, 'a negotiated cipher')
        const [[row]] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u, @@version AS v')
        assert.match(String(row!.u), new RegExp(`^${acc.user}@`))
        assert.match(String(row!.v), /MariaDB/)
      } finally {
        await c.end()
      }
      await assert.rejects(
        mysql.createConnection({ ...wrong(acc), ssl: { ca }, ...ed25519Plugin(WRONG) }),
        isAccessDenied(acc.user)
      )
    })

    test('mariadb connector: logs in on TLS, queries, wrong password gets the server 1045', async () => {
      const acc = accounts[plugin]
      const mark = connMark()
      const c = await mariadb.createConnection({ connectTimeout: 10_000, host: gw.host, port: gw.port, ...acc, ssl: { ca } })
      try {
        const rows = await c.query('SELECT CURRENT_USER() AS u, 6 * 7 AS n')
        assert.match(String(rows[0].u), new RegExp(`^${acc.user}@`))
        assert.equal(Number(rows[0].n), 42)
      } finally {
        await c.end()
      }
      const [closed] = await waitClosed(acc.user, mark, 1)
      assert.match(String(closed!.tls), /^TLSv1\.[23]$/, 'the gateway saw this session on TLS')
      await assert.rejects(
        mariadb.createConnection({ connectTimeout: 10_000, ...wrong(acc), ssl: { ca } }),
        isAccessDenied(acc.user)
      )
    })

    test('mariadb CLI: SELECT and status over TLS, wrong password prints ERROR 1045', async () => {
      const acc = accounts[plugin]
      const base = ['-h127.0.0.1', '-P', String(gw.port), '-u', acc.user, '--ssl', '--ssl-ca', env.pki.caCert]
      const q = await runMariadbCli([...base, '-N', '-B', '-e', 'SELECT CURRENT_USER(), 40 + 2'], { password: acc.password })
      assert.equal(q.code, 0, q.stderr)
      assert.match(q.stdout, new RegExp(`^${acc.user}@%\\t42\\n$`))
      const s = await runMariadbCli([...base, '-e', '\\s'], { password: acc.password })
      assert.equal(s.code, 0, s.stderr)
      assert.match(s.stdout, /SSL:\s+Cipher in use is \S+/)
      assert.match(s.stdout, new RegExp(`Current user:\\s+${acc.user}@`))
      const bad = await runMariadbCli([...base, '-e', 'SELECT 1'], { password: WRONG })
      assert.equal(bad.code, 1)
      assert.match(bad.stderr, new RegExp(`ERROR 1045 \\(28000\\).*Access denied for user '${acc.user}'`))
    })
  })
}

describe('logs', () => {
  test("the 'connection closed' line names route, conn, client, user, TLS, bytes, duration, closer, outcome", async () => {
    const acc = accounts.native
    const mark = connMark()
    const c = await mysql.createConnection({ host: gw.host, port: gw.port, ...acc, ssl: { ca } })
    const local = (c as unknown as { connection: { stream: tls.TLSSocket } }).connection.stream
    const clientAddr = `${local.localAddress}:${local.localPort}`
    await c.query("SELECT REPEAT('x', 100000) AS big")
    // COM_QUIT: the server closes the TCP connection first, so the backend is the closer.
    await c.end()
    const line = (await waitClosed(acc.user, mark, 1))[0]!
    assert.equal(line.route, 'drivers')
    assert.equal(typeof line.conn, 'number')
    assert.equal(line.client, clientAddr)
    assert.equal(line.user, acc.user)
    assert.match(String(line.tls), /^TLSv1\.[23]$/)
    assert.equal(line.backendTls, false)
    // The result alone is 100 kB; the client sent at least its handshake and the query.
    assert.ok(Number(line.bytesFromBackend) > 100_000, `bytesFromBackend ${line.bytesFromBackend}`)
    assert.ok(Number(line.bytesFromClient) > 100, `bytesFromClient ${line.bytesFromClient}`)
    assert.ok(Number.isInteger(line.durationMs) && Number(line.durationMs) >= 0)
    assert.equal(line.closedBy, 'backend')
    assert.equal(line.outcome, 'ok')
    assert.equal(line.errorCode, undefined)
    const lines = gw.logs.filter((l) => l.conn === line.conn)
    const est = lines.find((l) => l.msg === 'tls established')
    assert.ok(est && est.cipher && est.tls, 'tls established line with version and cipher')
    assert.ok(lines.some((l) => l.msg === 'authenticated' && l.user === acc.user))

    // A client that just drops its socket is the closer.
    const d = await mysql.createConnection({ host: gw.host, port: gw.port, ...acc, ssl: { ca } })
    d.destroy()
    const dropped = (await waitClosed(acc.user, mark, 2))[1]!
    assert.equal(dropped.closedBy, 'client')
    assert.equal(dropped.outcome, 'ok')
  })

  test('a failed login is logged with outcome auth_failed and the server error code', async () => {
    const acc = accounts.ed25519
    const mark = connMark()
    await assert.rejects(
      mysql.createConnection({ ...wrong(acc), ssl: { ca }, ...ed25519Plugin(WRONG) }),
      isAccessDenied(acc.user)
    )
    const [failed] = await waitClosed(acc.user, mark, 1)
    assert.equal(failed!.outcome, 'auth_failed')
    assert.equal(failed!.errorCode, 1045)
    assert.equal(failed!.closedBy, 'backend')
    assert.match(String(failed!.tls), /^TLSv1\.[23]$/)
    assert.ok(!gw.logs.some((l) => l.conn === failed!.conn && l.msg === 'authenticated'))
  })

  test('no password (good or wrong) appears anywhere in the captured logs', async () => {
    // Runs last in this file (node:test runs a file's tests in order): every login above has been logged.
    const text = gw.logText()
    assert.ok(text.length > 0 && gw.logs.some((l) => l.msg === 'authenticated'), 'logs were captured')
    for (const secret of secrets) {
      assert.equal(text.includes(secret), false, 'a password leaked into the logs')
      assert.equal(text.includes(Buffer.from(secret).toString('hex')), false, 'a password leaked (hex)')
      assert.equal(text.includes(Buffer.from(secret).toString('base64')), false, 'a password leaked (base64)')
    }
  })
})
