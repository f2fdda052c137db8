/**
 * admin.shutdownDelay through the real CLI (issue 4): on SIGTERM /readyz turns 503 at once while the port keeps
 * accepting and serving NEW clients for the delay; only then does it refuse and drain, and the gateway exits 0
 * once the last session ends. A second signal during the delay still exits at once.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { waitFor } from '../helpers/wait.js'
import { connectTls, queryOnce } from './support/clients.js'
import { gatewayYaml, writeInPlace } from './support/config-files.js'
import { startGateway, type GatewayRun } from './support/gateway-run.js'
import { refused } from './support/probes.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => {
  account = await createAccount(db, { user: 'e2e_shutdown_delay' })
})
after(async () => {
  await db.close()
})

/** One route and the admin endpoint with `shutdownDelay` set. */
async function start(name: string, shutdownDelay: string, drainTimeout: string): Promise<{ gw: GatewayRun; port: number }> {
  const configPath = path.join(tmpDir(`shutdown-delay-${name}`), 'gateway.yaml')
  const [port, adminPort] = [await freePort(), await freePort()]
  const plain = gatewayYaml(env, { routes: [{ name, port }], adminPort, drainTimeout })
  const adminLine = `admin: { listen: 127.0.0.1:${adminPort} }`
  assert.ok(plain.includes(adminLine), 'the config writer still emits the admin line this test extends')
  await writeInPlace(configPath, plain.replace(adminLine, `admin: { listen: 127.0.0.1:${adminPort}, shutdownDelay: ${shutdownDelay} }`))
  return { gw: await startGateway(configPath, { adminPort }), port }
}

const DELAY_MS = 1_000

test('shutdownDelay 1s: /readyz 503 at once, a new client is still served during the delay, then the port refuses; exit 0', async () => {
  const { gw, port } = await start('delayed', '1s', '10s')
  let stopped = false
  try {
    const held = await connectTls(env, port, account)
    await held.query('BEGIN')
    await held.query('SELECT 1')
    assert.equal((await gw.admin('/readyz')).status, 200)

    const since = gw.mark()
    const t0 = Date.now()
    gw.signal('SIGTERM')
    await waitFor(async () => (await gw.admin('/readyz')).status === 503, { timeoutMs: DELAY_MS / 2, intervalMs: 10, what: '/readyz 503 right after SIGTERM' })

    // Inside the delay: readiness already failed, and a brand-new client still gets TLS, auth and a query.
    assert.equal(await refused(port), false, 'port still accepting while /readyz is 503')
    assert.equal(await queryOnce(env, port, account, 7), 7, 'a new client is served during the delay')
    const servedAt = Date.now() - t0
    assert.deepEqual(await gw.admin('/readyz'), { status: 503, body: 'not ready: shutting down' }, 'still not ready, and why')
    assert.ok(servedAt < DELAY_MS, `the new client was served ${servedAt} ms after SIGTERM, inside the ${DELAY_MS} ms delay`)

    const line = await gw.waitForLog((l) => /^shutting down/.test(String(l.msg)), 'shutdown log', { since, timeoutMs: 2_000 })
    assert.equal(line.shutdownDelayMs, DELAY_MS)
    assert.equal(line.signal, 'SIGTERM')

    // After the delay: the port refuses new clients, the open session drains (the process is still running).
    await waitFor(() => refused(port), { timeoutMs: DELAY_MS + 3_000, what: 'port refusing once the delay is over' })
    const refusedAt = Date.now() - t0
    assert.ok(refusedAt >= DELAY_MS, `port refused ${refusedAt} ms after SIGTERM, before the ${DELAY_MS} ms delay ended`)
    assert.ok(gw.logs.slice(since).some((l) => l.msg === 'shutdown delay over: draining every listener'))
    assert.equal((await gw.routes())[0]!.state, 'draining')
    assert.equal((await gw.admin('/readyz')).status, 503)

    await held.query('SELECT 2')
    await held.query('COMMIT')
    await held.end()
    const { code } = await waitFor(() => gw.exited, { timeoutMs: 5_000, what: 'exit after the last session' })
    stopped = true
    assert.equal(code, 0)
  } finally {
    if (!stopped) await gw.stop()
  }
})

test('a second signal during the shutdown delay exits at once (143)', async () => {
  const { gw, port } = await start('forced', '60s', '60s')
  let stopped = false
  try {
    gw.signal('SIGTERM')
    await gw.waitForLog((l) => /^shutting down/.test(String(l.msg)), 'shutdown log', { timeoutMs: 5_000 })
    assert.equal(await refused(port), false, 'inside the 60 s delay the port accepts')
    const t0 = Date.now()
    gw.signal('SIGTERM')
    const { code } = await waitFor(() => gw.exited, { timeoutMs: 5_000, what: 'forced exit during the delay' })
    stopped = true
    assert.equal(code, 143)
    assert.ok(Date.now() - t0 < 3_000)
  } finally {
    if (!stopped) await gw.stop()
  }
})
