/**
 * Failures a client can see (notes §5, §9.3): a backend that is down, slow, silent, full or hangs up; the
 * route's connection limit; clients that stall or vanish in the handshake. Every case must end in a MySQL ERR
 * the client can print, or a prompt close where no ERR is possible: never a hang, never a client-range code.
 * Backends here are raw sockets (./helpers/raw-mysql.ts) so each misbehaviour is exact and countable.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import mysql from 'mysql2/promise'
import { testEnv } from '../helpers/env.js'
import { freePort, runMariadbCli } from '../helpers/cli.js'
import { routeConfig, startEngine, type RouteOverrides, type RunningEngine } from '../helpers/engine.js'
import { bytes, frame, int1, int2 } from '../helpers/packets.js'
import { RawClient, decodeErr, delay, handshakeResponse, sslRequest, startRawBackend, type RawBackend } from '../helpers/raw-mysql.js'
import { settledWithin, waitFor } from '../helpers/wait.js'

const env = testEnv()
const ca = readFileSync(env.pki.caCert)
const engines: RunningEngine[] = []
const backends: RawBackend[] = []

after(async () => {
  for (const gw of engines) await gw.close()
  for (const b of backends) await b.close()
})

async function engine(overrides: RouteOverrides): Promise<RunningEngine> {
  const gw = await startEngine(routeConfig(overrides))
  engines.push(gw)
  return gw
}

async function rawBackend(opts: Parameters<typeof startRawBackend>[0]): Promise<RawBackend> {
  const b = await startRawBackend(opts)
  backends.push(b)
  return b
}

const backendAt = (port: number) => ({ host: '127.0.0.1', port })

/** The 'connection closed' log lines so far (one per client connection). */
const closedLines = (gw: RunningEngine) => gw.logs.filter((l) => l.msg === 'connection closed')

async function closedLine(gw: RunningEngine, n = 1): Promise<Record<string, unknown>> {
  return (await waitFor(() => closedLines(gw)[n - 1], { timeoutMs: 5000, what: `closed log line #${n}` }))!
}

/** A client-visible gateway error: server range (never 2000-2999 / 5000-5999), SQLSTATE set. */
function assertServerRangeErr(err: { errno?: number; sqlState?: string; message: string }, routeName: string, hidden: string[]) {
  assert.ok(typeof err.errno === 'number', `errno missing: ${err.message}`)
  assert.ok(!(err.errno >= 2000 && err.errno < 3000) && !(err.errno >= 5000 && err.errno < 6000), `client-range code ${err.errno}`)
  assert.match(err.sqlState ?? '', /^[0-9A-Z]{5}$/)
  assert.ok(err.message.includes(routeName), `message names the route: ${err.message}`)
  for (const h of hidden) assert.ok(!err.message.includes(h), `message must not reveal ${h}: ${err.message}`)
}

/**
 * With the backend unavailable the gateway greets itself (thread id 0, its own scramble), lets the client send
 * its HandshakeResponse, and answers that with the ERR: every client, including those that start TLS by
 * default, then prints the plain MySQL error. Returns that ERR and its sequence id.
 */
async function refusedAfterOwnGreeting(port: number, timeoutMs = 6000): Promise<{ seq: number; err: ReturnType<typeof decodeErr>; raw: RawClient }> {
  const raw = await RawClient.connect(port)
  const greeting = await raw.packet(timeoutMs)
  assert.equal(greeting.seq, 0)
  assert.equal(greeting.payload[0], 10, 'a protocol-10 greeting from the gateway itself')
  const v = greeting.payload.indexOf(0, 1)
  assert.equal(greeting.payload.readUInt32LE(v + 1), 0, 'thread id 0: no backend session exists')
  raw.send(1, handshakeResponse({ user: 'someone', auth: Buffer.alloc(20, 1) }))
  const answer = await raw.packet(timeoutMs)
  return { seq: answer.seq, err: decodeErr(answer.payload), raw }
}

describe('backend unavailable', () => {
  test('refused: mysql2 gets ERR 1105 naming the route, not the backend address', async () => {
    const dead = await freePort()
    const gw = await engine({ name: 'down-route', backend: backendAt(dead) })
    await assert.rejects(mysql.createConnection({ host: gw.host, port: gw.port, user: 'u', password: 'p', ssl: { ca } }), (err: any) => {
      assert.equal(err.errno, 1105, err.message)
      assertServerRangeErr(err, 'down-route', [String(dead), '127.0.0.1'])
      return true
    })
    // Byte level: own greeting, then the ERR answers the HandshakeResponse (seq 2), then the gateway closes.
    const { seq, err, raw } = await refusedAfterOwnGreeting(gw.port)
    assert.equal(seq, 2)
    assert.equal(err.code, 1105)
    assert.equal(err.sqlState, 'HY000')
    assert.ok(await raw.closedWithin(5000), 'closed after the ERR')
    assert.equal((await closedLine(gw, 2)).outcome, 'backend_unavailable')
  })

  test('refused: the mariadb CLI prints ERROR 1105 with the route, not "malformed packet" / "Lost connection"', async () => {
    const dead = await freePort()
    const gw = await engine({ name: 'cli-down', backend: backendAt(dead) })
    const cli = (extra: string[]) =>
      runMariadbCli(['-h127.0.0.1', '-P', String(gw.port), '-u', 'someone', ...extra, '-e', 'SELECT 1'], { password: 'x', timeoutMs: 15_000 })
    const plain = await cli(['--skip-ssl'])
    assert.notEqual(plain.code, 0)
    assert.match(plain.stderr, /^ERROR 1105 \(HY000\): route cli-down: backend unavailable \(connection refused\)$/m, plain.stderr)
    // This client build wants TLS by default (and with --ssl), and distrusts an ERR that arrives before TLS.
    // The gateway therefore greets, completes TLS and sends the ERR inside it: the same clean line.
    for (const extra of [[], ['--ssl']]) {
      const r = await cli(extra)
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /^ERROR 1105 \(HY000\): route cli-down: backend unavailable \(connection refused\)$/m, r.stderr)
      assert.doesNotMatch(r.stderr, /malformed packet|Lost connection|out of order/i)
      assert.ok(!r.stderr.includes(String(dead)), r.stderr)
    }
    assert.doesNotMatch(plain.stderr, /malformed packet|Lost connection|out of order/i)
    assert.ok(!plain.stderr.includes(String(dead)), plain.stderr)
  })

  test('refused, gateway-greeting mode: the ERR comes inside TLS, so the CLI with --ssl prints ERROR 1105 itself', async () => {
    const dead = await freePort()
    const gw = await startEngine(routeConfig({ name: 'gg-down', greeting: 'gateway', backend: backendAt(dead) }), { greeting: 'gateway' })
    engines.push(gw)
    const r = await runMariadbCli(['-h127.0.0.1', '-P', String(gw.port), '-u', 'someone', '--ssl', '-e', 'SELECT 1'], {
      password: 'x',
      timeoutMs: 15_000,
    })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /^ERROR 1105 \(HY000\): route gg-down: backend unavailable \(connection refused\)$/m, r.stderr)
    assert.ok(!r.stderr.includes(String(dead)), r.stderr)
  })

  test('TCP connect timeout (accept queue full): ERR 1105 at timeouts.connect, long before timeouts.handshake', async (t) => {
    const stuck = await unresponsiveListener()
    t.after(() => stuck.stop())
    const gw = await engine({ name: 'slow-dial', backend: backendAt(stuck.port), timeouts: { connectMs: 300, handshakeMs: 5000 } })
    const started = Date.now()
    const { seq, err } = await refusedAfterOwnGreeting(gw.port)
    const elapsed = Date.now() - started
    assert.equal(seq, 2)
    assert.equal(err.code, 1105)
    assert.match(err.message, /slow-dial/)
    assert.ok(!err.message.includes(String(stuck.port)), err.message)
    assert.ok(elapsed >= 250 && elapsed < 4000, `ERR after ${elapsed} ms (connect timeout 300 ms, handshake 5000 ms)`)
    assert.equal((await closedLine(gw)).outcome, 'backend_unavailable')
  })

  test('backend accepts TCP but never greets: ERR 1105 when timeouts.connect expires', async () => {
    const mute = await rawBackend({ greeting: 'none' })
    // timeouts.connect covers the TCP dial and the wait for the greeting (and backend TLS).
    const gw = await engine({ name: 'mute', backend: backendAt(mute.port), timeouts: { connectMs: 300, handshakeMs: 5000 } })
    const started = Date.now()
    const { seq, err, raw } = await refusedAfterOwnGreeting(gw.port)
    const elapsed = Date.now() - started
    assert.equal(seq, 2)
    assert.equal(err.code, 1105)
    assert.match(err.message, /mute/)
    assert.ok(elapsed >= 250 && elapsed < 4000, `ERR after ${elapsed} ms (connect timeout 300 ms)`)
    assert.ok(await raw.closedWithin(5000))
    assert.equal((await closedLine(gw)).outcome, 'backend_unavailable')
    await waitFor(() => mute.conns[0]?.closed, { timeoutMs: 5000, what: 'backend socket closed' })
  })

  test('greeting that is an ERR (pre-4.1 1040) is forwarded byte for byte at seq 0, then closed', async () => {
    const errGreeting = bytes(int1(0xff), int2(1040), Buffer.from('Too many connections'))
    const full = await rawBackend({ greeting: errGreeting })
    const gw = await engine({ name: 'full', backend: backendAt(full.port) })
    const raw = await RawClient.connect(gw.port)
    assert.ok(await raw.closedWithin(5000), 'gateway closes after forwarding')
    assert.deepEqual(raw.received, frame(0, errGreeting), `got ${raw.received.toString('hex')}`)
    // And a driver reads it as the server's error.
    await assert.rejects(
      mysql.createConnection({ host: gw.host, port: gw.port, user: 'u', password: 'p', ssl: { ca } }),
      (err: any) => err.errno === 1040 && /Too many connections/.test(err.message)
    )
  })

  test('backend greets with garbage: ERR 1105, the route named', async () => {
    const odd = await rawBackend({ greeting: Buffer.from('SSH-2.0-OpenSSH_9.2\r\n') })
    const gw = await engine({ name: 'not-mysql', backend: backendAt(odd.port) })
    const { err, raw } = await refusedAfterOwnGreeting(gw.port)
    assert.equal(err.code, 1105)
    assert.match(err.message, /^route not-mysql: backend unavailable/)
    assert.ok(await raw.closedWithin(5000))
  })

  test('backend silent after the HandshakeResponse: the TLS client gets ERR 1105 at timeouts.handshake', async () => {
    const silent = await rawBackend({ greeting: 'normal' })
    const gw = await engine({ name: 'silent-auth', backend: backendAt(silent.port), timeouts: { handshakeMs: 800 } })
    const started = Date.now()
    await assert.rejects(
      mysql.createConnection({ host: gw.host, port: gw.port, user: 'u', password: 'p', ssl: { ca }, connectTimeout: 10_000 }),
      (err: any) => {
        assert.equal(err.errno, 1105, err.message)
        assertServerRangeErr(err, 'silent-auth', [String(silent.port)])
        return true
      }
    )
    const elapsed = Date.now() - started
    assert.ok(elapsed >= 700 && elapsed < 4000, `answered after ${elapsed} ms (handshake timeout 800 ms)`)
    assert.ok(silent.conns[0]!.received.length > 36, 'the backend did get the HandshakeResponse')
    assert.equal((await closedLine(gw)).outcome, 'timeout')
  })

  for (const closeAfter of ['greeting', 'first-packet'] as const) {
    test(`backend closes after the ${closeAfter === 'greeting' ? 'greeting' : 'HandshakeResponse'}: the client gets an ERR, no hang`, async () => {
      const flaky = await rawBackend({ closeAfter })
      const gw = await engine({ name: `flaky-${closeAfter}`, backend: backendAt(flaky.port) })
      const attempt = mysql.createConnection({ host: gw.host, port: gw.port, user: 'u', password: 'p', ssl: { ca }, connectTimeout: 10_000 })
      attempt.catch(() => {})
      assert.ok(await settledWithin(attempt, 5000), 'the client is answered within 5 s')
      await assert.rejects(attempt, (err: any) => {
        assert.equal(err.errno, 1105, err.message)
        assertServerRangeErr(err, `flaky-${closeAfter}`, [String(flaky.port)])
        return true
      })
      assert.equal((await closedLine(gw)).outcome, 'backend_unavailable')
    })
  }
})

describe('maxConnections', () => {
  test('the third connection gets ERR 1040 (08004) at seq 0 and the backend never sees it', async () => {
    const counting = await rawBackend({ greeting: 'normal' })
    const gw = await engine({ name: 'limited', backend: backendAt(counting.port), maxConnections: 2 })
    const a = await RawClient.connect(gw.port)
    const b = await RawClient.connect(gw.port)
    await a.packet()
    await b.packet() // both greeted: both hold a slot
    assert.equal(counting.conns.length, 2)

    const c = await RawClient.connect(gw.port)
    const first = await c.packet()
    assert.equal(first.seq, 0)
    const err = decodeErr(first.payload)
    assert.deepEqual([err.code, err.sqlState], [1040, '08004'])
    assert.ok(await c.closedWithin(5000))
    await assert.rejects(
      mysql.createConnection({ host: gw.host, port: gw.port, user: 'u', password: 'p', ssl: { ca } }),
      (e: any) => e.errno === 1040 && e.sqlState === '08004'
    )
    await delay(100)
    assert.equal(counting.conns.length, 2, 'no backend connection for rejected clients')
    assert.ok(closedLines(gw).filter((l) => l.outcome === 'limit').length === 2)

    // A freed slot is usable again.
    a.destroy()
    await waitFor(() => gw.engine.stats().limited!.open === 1, { timeoutMs: 5000, what: 'slot released' })
    const d = await RawClient.connect(gw.port)
    assert.equal((await d.packet()).payload[0], 0x0a, 'a greeting once a slot is free')
    b.destroy()
    d.destroy()
  })
})

describe('clients that stall or vanish during the handshake', () => {
  for (const where of ['after the greeting', 'after the SSLRequest (mid-TLS)'] as const) {
    test(`client stalling ${where} is cut at timeouts.handshake with outcome timeout`, async () => {
      const backend = await rawBackend({ greeting: 'normal' })
      const gw = await engine({ name: 'stall', backend: backendAt(backend.port), timeouts: { handshakeMs: 500 } })
      const started = Date.now()
      const raw = await RawClient.connect(gw.port)
      await raw.packet()
      if (where !== 'after the greeting') raw.send(1, sslRequest())
      assert.ok(await raw.closedWithin(5000), 'gateway closed the stalled client')
      const elapsed = Date.now() - started
      assert.ok(elapsed >= 400 && elapsed < 4000, `closed after ${elapsed} ms (handshake timeout 500 ms)`)
      const closed = await closedLine(gw)
      assert.equal(closed.outcome, 'timeout', JSON.stringify(closed))
      await waitFor(() => backend.conns[0]?.closed, { timeoutMs: 5000, what: 'backend socket closed too' })
      assert.equal(backend.conns[0]!.received.length, 0, 'nothing was sent to the backend')
    })
  }

  test('client closing in the middle of the TLS handshake: tls_failed, no ERR, backend closed', async () => {
    const backend = await rawBackend({ greeting: 'normal' })
    const gw = await engine({ name: 'vanish', backend: backendAt(backend.port) })
    const raw = await RawClient.connect(gw.port)
    await raw.packet()
    // SSLRequest plus the first bytes of a TLS record header, then gone.
    raw.raw.write(Buffer.concat([frame(1, sslRequest()), Buffer.from([0x16, 0x03, 0x01, 0x02])]))
    await delay(50)
    raw.raw.destroy()
    const closed = await closedLine(gw)
    assert.equal(closed.outcome, 'tls_failed', JSON.stringify(closed))
    assert.equal(closed.errorCode, undefined, 'no ERR is possible mid-TLS')
    assert.equal(gw.engine.stats().vanish!.gatewayErrors['1105'], undefined, 'not counted as a backend error')
    await waitFor(() => backend.conns[0]?.closed, { timeoutMs: 5000, what: 'backend socket closed' })
  })

  test('SSLRequest followed by non-TLS garbage: closed without a plaintext ERR, outcome tls_failed', async () => {
    const backend = await rawBackend({ greeting: 'normal' })
    const gw = await engine({ name: 'garbage', backend: backendAt(backend.port) })
    const raw = await RawClient.connect(gw.port)
    await raw.packet()
    const afterGreeting = raw.received.length
    raw.raw.write(Buffer.concat([frame(1, sslRequest()), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]))
    assert.ok(await raw.closedWithin(5000), 'gateway closes')
    const tail = raw.received.subarray(afterGreeting)
    // A TLS alert (0x15) may be sent; a MySQL ERR frame in plaintext would be garbage to a client mid-TLS.
    assert.ok(tail.length === 0 || tail[0] === 0x15, `unexpected bytes after the SSLRequest: ${tail.toString('hex')}`)
    const closed = await closedLine(gw)
    assert.equal(closed.outcome, 'tls_failed', JSON.stringify(closed))
    await waitFor(() => backend.conns[0]?.closed, { timeoutMs: 5000, what: 'backend socket closed' })
  })
})

/**
 * A listener whose accept queue is full: a child process binds with backlog 1 and stops itself (SIGSTOP), so
 * nothing is ever accepted; once the queue is full the kernel drops further SYNs and connect() just waits.
 */
async function unresponsiveListener(): Promise<{ port: number; stop(): void }> {
  const script = `const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{process.stdout.write(s.address().port+'\\n');process.kill(process.pid,'SIGSTOP')})`
  const child: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] })
  const fillers: net.Socket[] = []
  const stop = () => {
    for (const s of fillers) s.destroy()
    child.kill('SIGKILL')
  }
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('stuck listener did not report its port')), 5000)
      child.stdout!.once('data', (d: Buffer) => (clearTimeout(timer), resolve(Number(String(d).trim()))))
      child.once('exit', () => (clearTimeout(timer), reject(new Error('stuck listener exited'))))
    })
    for (let i = 0; i < 16; i++) {
      const s = net.connect({ port, host: '127.0.0.1' })
      s.on('error', () => {})
      fillers.push(s)
      const connected = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 300)
        s.once('connect', () => (clearTimeout(timer), resolve(true)))
      })
      if (!connected) return { port, stop }
    }
    throw new Error('the accept queue never filled')
  } catch (err) {
    stop()
    throw err
  }
}
