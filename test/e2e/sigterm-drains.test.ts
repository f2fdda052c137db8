/**
 * SIGTERM: readiness drops at once, the port stops accepting, an open transaction stays usable and committable
 * during the drain, and the gateway exits 0 as soon as it ends. A second signal exits at once.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { waitFor } from '../helpers/wait.js'
import { connectTls } from './support/clients.js'
import { gatewayYaml, writeInPlace } from './support/config-files.js'
import { startGateway } from './support/gateway-run.js'
import { alive, refused } from './support/probes.js'

const env = testEnv()
const db = harnessMariaDb(env)
const schema = `e2e_drain_${randomBytes(4).toString('hex')}`
let account: Account
before(async () => {
  await db.query(`CREATE DATABASE ${schema}`)
  await db.query(`CREATE TABLE ${schema}.t (n INT) ENGINE=InnoDB`)
  account = await createAccount(db, { user: 'e2e_drain', grant: `ALL ON ${schema}.*` })
})
after(async () => {
  await db.query(`DROP DATABASE IF EXISTS ${schema}`)
  await db.close()
})

test('SIGTERM drains: the open transaction commits during the drain, then exit 0', async () => {
  const configPath = path.join(tmpDir('sigterm-drain'), 'gateway.yaml')
  const [port, adminPort] = [await freePort(), await freePort()]
  await writeInPlace(configPath, gatewayYaml(env, { routes: [{ name: 'drainme', port }], adminPort, drainTimeout: '20s' }))
  const gw = await startGateway(configPath, { adminPort })
  let stopped = false
  try {
    const childPid = (await gw.routes())[0]!.pid!
    const c = await connectTls(env, port, account)
    await c.query('BEGIN')
    await c.query(`INSERT INTO ${schema}.t VALUES (1)`)

    gw.signal('SIGTERM')
    await gw.waitForLog((l) => /shutting down/.test(String(l.msg)), 'shutdown log')
    assert.equal((await gw.admin('/readyz')).status, 503, 'not ready from the moment the drain begins')
    // A reload request during the drain is ignored, not fatal (SIGHUP's default action would kill the process).
    gw.signal('SIGHUP')
    await gw.waitForLog((l) => l.msg === 'signal ignored' && l.signal === 'SIGHUP', 'SIGHUP ignored')
    await waitFor(() => refused(port), { timeoutMs: 5_000, what: 'port refusing new clients' })

    // Still inside the transaction, during the drain.
    await c.query(`INSERT INTO ${schema}.t VALUES (2)`)
    await c.query('COMMIT')
    const rows = await db.query<Array<{ c: number }>>(`SELECT COUNT(*) AS c FROM ${schema}.t`)
    assert.equal(Number(rows[0]!.c), 2, 'both rows committed')
    const endedAt = Date.now()
    await c.end()

    const { code } = await waitFor(() => gw.exited, { timeoutMs: 10_000, what: 'gateway exit after the last session' })
    stopped = true
    assert.equal(code, 0)
    assert.ok(Date.now() - endedAt < 5_000, 'exits when the last session ends, not at drainTimeout')
    assert.equal(alive(childPid), false, 'child gone')
  } finally {
    if (!stopped) await gw.stop()
  }
})

test('a second signal during the drain exits at once and leaves no child behind', async () => {
  const configPath = path.join(tmpDir('sigterm-force'), 'gateway.yaml')
  const port = await freePort()
  const adminPort = await freePort()
  await writeInPlace(configPath, gatewayYaml(env, { routes: [{ name: 'forced', port }], adminPort, drainTimeout: '60s' }))
  const gw = await startGateway(configPath, { adminPort })
  let stopped = false
  try {
    const childPid = (await gw.routes())[0]!.pid!
    const c = await connectTls(env, port, account)
    c.on('error', () => {})
    gw.signal('SIGTERM')
    await gw.waitForLog((l) => /shutting down/.test(String(l.msg)), 'shutdown log')
    const t0 = Date.now()
    gw.signal('SIGINT')
    const { code } = await waitFor(() => gw.exited, { timeoutMs: 5_000, what: 'forced exit' })
    stopped = true
    assert.equal(code, 130)
    assert.ok(Date.now() - t0 < 3_000)
    await waitFor(() => !alive(childPid), { timeoutMs: 2_000, what: 'child killed' })
    c.destroy()
  } finally {
    if (!stopped) await gw.stop()
  }
})
