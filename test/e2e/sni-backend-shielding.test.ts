/**
 * Backend shielding through the real CLI, asserted on the backend itself: a MariaDB started for this file
 * only, so its `Connections`, `Aborted_connects` and processlist move for nothing but what this file does.
 * Behind a shared SNI listener (gateway greeting), port scanners, clients whose TLS handshake fails and clients
 * that stall before the HandshakeResponse open no backend connection at all; a real login opens exactly one
 * (the control), and a transparent route on the same backend shows what a scanner costs without shielding.
 * A client that leaves right after the relayed AuthSwitchRequest reaches the backend as a failed login (the
 * gateway answers with an empty auth packet), not as a connection dropped mid-handshake.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import mysql from 'mysql2/promise'
import { mintLeaf, type Leaf } from '../helpers/certs.js'
import { freePort } from '../helpers/cli.js'
import { testEnv, tmpDir } from '../helpers/env.js'
import { createAccount, startMariaDb, type Account, type MariaDbInstance } from '../helpers/mariadb.js'
import {
  CAP,
  CLIENT_CAPS,
  RawClient,
  greetingScramble,
  handshakeResponse,
  nativeToken,
  sslRequest,
  type RawPacket,
} from '../helpers/raw-mysql.js'
import { waitFor } from '../helpers/wait.js'
import { startGateway, type GatewayRun } from './support/gateway-run.js'
import { endConn, scalar, sniYaml, viaName } from './support/sni.js'

const env = testEnv()
const ca = readFileSync(env.pki.caCert)
const COUNTERS = ['Connections', 'Aborted_connects', 'Aborted_connects_preauth', 'Access_denied_errors'] as const
type Snapshot = Record<(typeof COUNTERS)[number] | 'tcpSessions', number>

let db: MariaDbInstance
/** One root session over the Unix socket, opened before any baseline, so reading counters moves none. */
let root: mysql.Connection
let account: Account
let gw: GatewayRun
let port: number
let transparentPort: number
let shieldCert: Leaf

before(async () => {
  const starting = startMariaDb({ baseDir: tmpDir('sni-shield') })
  shieldCert = await mintLeaf(env.pki, 'shield.db.test')
  const otherCert = await mintLeaf(env.pki, 'other.db.test')
  db = await starting
  account = await createAccount(db, { user: 'shield' })
  root = await mysql.createConnection({ socketPath: db.socketPath, user: 'root', password: db.rootPassword })
  const dir = tmpDir('sni-shield-gw')
  const configPath = path.join(dir, 'gateway.yaml')
  ;[port, transparentPort] = [await freePort(), await freePort()]
  const adminPort = await freePort()
  const yaml = sniYaml({
    listenPort: port,
    adminPort,
    handshakeTimeout: '1s',
    routes: [
      { name: 'shield', backendPort: db.port, serverNames: ['shield.db.test'], default: true, ...pair(shieldCert) },
      { name: 'other', backendPort: env.mariadb.port, serverNames: ['other.db.test'], ...pair(otherCert) },
      // The same backend behind a transparent route: what the shared listener protects it from.
      { name: 'transparent', backendPort: db.port, listenPort: transparentPort, ...pair(shieldCert) },
    ],
  })
  await writeFile(configPath, yaml)
  gw = await startGateway(configPath, { adminPort })
})
after(async () => {
  const stopped = await gw?.stop()
  await root?.end().catch(() => {})
  await db?.stop()
  assert.equal(stopped?.code ?? 0, 0, `gateway exit code; stderr: ${gw?.stderr().slice(-2000)}`)
})

function pair(leaf: Leaf): { cert: string; key: string } {
  return { cert: leaf.cert, key: leaf.key }
}

async function snapshot(): Promise<Snapshot> {
  const [rows] = await root.query<mysql.RowDataPacket[]>(
    `SHOW GLOBAL STATUS WHERE Variable_name IN (${COUNTERS.map(() => '?').join(', ')})`,
    [...COUNTERS]
  )
  const out = Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)])) as Snapshot
  for (const c of COUNTERS) assert.ok(Number.isInteger(out[c]), `status counter ${c} missing`)
  // TCP sessions show as host:port; the root sessions use the Unix socket ("localhost").
  const [[pl]] = await root.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE HOST LIKE '%:%'")
  out.tcpSessions = Number(pl!.n)
  return out
}

function delta(a: Snapshot, b: Snapshot): Partial<Snapshot> {
  const d: Partial<Snapshot> = {}
  for (const k of Object.keys(b) as Array<keyof Snapshot>) if (b[k] !== a[k] && k !== 'tcpSessions') d[k] = b[k] - a[k]
  return d
}

/** Waits until the gateway logged `n` more 'connection closed' lines since `since`; returns them. */
async function closedLines(since: number, n: number) {
  await waitFor(() => gw.logs.slice(since).filter((l) => l.msg === 'connection closed').length >= n, {
    timeoutMs: 8_000,
    what: `${n} 'connection closed' log lines`,
  })
  return gw.logs.slice(since).filter((l) => l.msg === 'connection closed')
}

/** Greeting, SSLRequest, TLS with SNI: a client ready to send its HandshakeResponse (seq 2). */
async function tlsClient(toPort: number, servername: string): Promise<{ client: RawClient; greeting: RawPacket }> {
  const client = await RawClient.connect(toPort)
  const greeting = await client.packet()
  client.send(1, sslRequest())
  await client.startTls({ servername })
  return { client, greeting }
}

describe('backend shielding (counters of a MariaDB only this file uses)', () => {
  test('scanners, failed TLS handshakes and stalled clients open no backend connection; one login opens one', async () => {
    const base = await snapshot()
    const since = gw.mark()

    // Scanners: connect and leave at once; read the greeting and leave; send an HTTP request instead.
    const quick = await RawClient.connect(port)
    quick.destroy()
    const reader = await RawClient.connect(port)
    const greeting = await reader.packet()
    assert.equal(greeting.payload[0], 0x0a)
    const v = greeting.payload.indexOf(0, 1)
    assert.equal(greeting.payload.readUInt32LE(v + 1), 0, 'the gateway greets (thread id 0), not the backend')
    reader.destroy()
    const http = await RawClient.connect(port)
    await http.packet()
    http.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    assert.ok(await http.closedWithin(5_000), 'gateway closes an HTTP scanner')

    // TLS that fails: SSLRequest, then bytes that are not a ClientHello.
    const garbage = await RawClient.connect(port)
    await garbage.packet()
    garbage.send(1, sslRequest())
    garbage.socket.write(Buffer.from('this is not a TLS ClientHello, just noise\r\n'.repeat(4)))
    assert.ok(await garbage.closedWithin(5_000), 'gateway closes a client whose TLS handshake fails')

    // Stalls (timeouts.handshake 1s): after the greeting, and after TLS with a tenant's SNI.
    const stallPlain = await RawClient.connect(port)
    await stallPlain.packet()
    const { client: stallTls } = await tlsClient(port, 'shield.db.test')
    const during = await snapshot()
    assert.equal(during.tcpSessions, 0, 'processlist: no session from the gateway while two clients stall')
    assert.deepEqual(delta(base, during), {})
    assert.ok(await stallPlain.closedWithin(5_000), 'stalled plaintext client closed by the handshake timeout')
    assert.ok(await stallTls.closedWithin(5_000), 'stalled TLS client closed by the handshake timeout')

    const lines = await closedLines(since, 6)
    const outcomes = lines.map((l) => String(l.outcome)).sort()
    assert.deepEqual(outcomes, ['client_error', 'client_error', 'client_error', 'timeout', 'timeout', 'tls_failed'])
    assert.ok(lines.every((l) => l.route === 'shield'), 'unrouted connections are counted on the default route')
    const after = await snapshot()
    assert.deepEqual(delta(base, after), {}, 'backend counters did not move')
    assert.equal(after.tcpSessions, 0)

    // Control: one real login through the same listener moves Connections by exactly 1, nothing else.
    const c = await viaName(port, 'shield.db.test', account, { ca })
    assert.equal(Number(await scalar(c, 'SELECT @@port')), db.port)
    assert.equal((await snapshot()).tcpSessions, 1, 'processlist shows the logged-in session')
    await endConn(c)
    await waitFor(async () => (await snapshot()).tcpSessions === 0, { timeoutMs: 5_000, what: 'backend session gone' })
    assert.deepEqual(delta(after, await snapshot()), { Connections: 1 })
  })

  test('contrast: the same scanner on a transparent route does reach the backend', async () => {
    const base = await snapshot()
    const since = gw.mark()
    const scanner = await RawClient.connect(transparentPort)
    await scanner.packet()
    scanner.destroy()
    await closedLines(since, 1)
    const moved = await waitFor(
      async () => {
        const d = delta(base, await snapshot())
        return d.Aborted_connects ? d : undefined
      },
      { timeoutMs: 5_000, what: 'backend counts the aborted connect' }
    )
    assert.deepEqual(moved, { Connections: 1, Aborted_connects: 1, Aborted_connects_preauth: 1 })
  })
})

describe('a client that leaves right after the relayed AuthSwitchRequest', () => {
  /** HandshakeResponse for the gateway's scramble, read the switch, then vanish. */
  async function leaveAfterSwitch(viaGateway: boolean): Promise<RawPacket> {
    let client: RawClient
    let seq: number
    let scramble: Buffer
    let caps = CLIENT_CAPS
    if (viaGateway) {
      const t = await tlsClient(port, 'shield.db.test')
      client = t.client
      scramble = greetingScramble(t.greeting.payload)
      seq = 2
      caps |= CAP.SSL
    } else {
      // The same exchange straight to the backend, probing as the gateway does (empty auth, unknown plugin).
      client = await RawClient.connect(db.port)
      scramble = Buffer.alloc(0)
      await client.packet()
      seq = 1
    }
    const auth = viaGateway ? nativeToken(account.password, scramble) : Buffer.alloc(0)
    client.send(seq, handshakeResponse({ caps, user: account.user, auth, plugin: viaGateway ? 'mysql_native_password' : 'gw_probe' }))
    const sw = await client.packet()
    client.destroy()
    return sw
  }

  async function settle(base: Snapshot): Promise<Partial<Snapshot>> {
    return waitFor(
      async () => {
        const now = await snapshot()
        return now.Aborted_connects > base.Aborted_connects && now.tcpSessions === 0 ? delta(base, now) : undefined
      },
      { timeoutMs: 5_000, what: 'backend finished the abandoned login' }
    )
  }

  test('the backend sees a failed login (empty auth answer), where a bare close is a dropped handshake', async () => {
    // Reference, without the gateway: the backend's own reading of a client that vanishes after the switch.
    let base = await snapshot()
    const direct = await leaveAfterSwitch(false)
    assert.equal(direct.payload[0], 0xfe)
    const bare = await settle(base)

    base = await snapshot()
    const logBefore = (await readFile(db.logFile, 'utf8')).length
    const since = gw.mark()
    const sw = await leaveAfterSwitch(true)
    assert.equal(sw.seq, 3, 'switch relayed with the client leg sequence id')
    assert.equal(sw.payload[0], 0xfe, 'AuthSwitchRequest')
    assert.equal(sw.payload.toString('latin1', 1, sw.payload.indexOf(0, 1)), 'mysql_native_password', "the account's own plugin")
    const [closed] = await closedLines(since, 1)
    assert.equal(closed!.user, account.user)
    assert.equal(closed!.sni, 'shield.db.test')
    const viaGw = await settle(base)

    // Observed on MariaDB 10.11: Aborted_connects counts every failed login, a refused password included, so
    // it moves by 1 either way. What the empty answer changes is the kind of failure: an authentication
    // error (Access_denied_errors, "Access denied ... (using password: NO)" in the server log) instead of a
    // connection dropped during authentication, which MariaDB counts toward max_connect_errors.
    assert.deepEqual(bare, { Connections: 1, Aborted_connects: 1 }, 'reference: bare close after the switch')
    assert.deepEqual(viaGw, { Connections: 1, Aborted_connects: 1, Access_denied_errors: 1 }, 'through the gateway')
    const log = (await readFile(db.logFile, 'utf8')).slice(logBefore)
    assert.match(log, new RegExp(`Access denied for user '${account.user}'@'[^']+' \\(using password: NO\\)`))
  })
})
