/**
 * The operator's everyday promise: a busy tenant sees not one failed query while another tenant is added,
 * changed and removed 20 times, and while the busy tenant's own route is changed once (its new child takes new
 * connections, the old one keeps the open session).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { waitFor } from '../helpers/wait.js'
import { queryOnce, trafficLoop } from './support/clients.js'
import { gatewayYaml, writeInPlace, type E2eRoute } from './support/config-files.js'
import { startGateway, type GatewayRun } from './support/gateway-run.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_load' })))
after(() => db.close())

const CYCLES = Number(process.env.GW_E2E_CYCLES) || 20

test(`route A serves without a failure while route B is added, changed and removed ${CYCLES} times`, async () => {
  const configPath = path.join(tmpDir('reload-under-load'), 'gateway.yaml')
  const [pa, pb, adminPort] = [await freePort(), await freePort(), await freePort()]
  // A long drain for A: its persistent session must outlive A's own replacement for the whole test.
  let routeA: E2eRoute = { name: 'busy', port: pa, drainTimeout: '120s' }
  const save = (routes: E2eRoute[]) => writeInPlace(configPath, gatewayYaml(env, { routes, adminPort }))
  await save([routeA])
  const gw = await startGateway(configPath, { adminPort })
  const reload = async (routes: E2eRoute[]) => {
    const since = gw.mark()
    await save(routes)
    gw.signal('SIGHUP')
    await gw.waitForLog((l) => l.msg === 'reload applied' && l.trigger === 'SIGHUP', 'reload applied', { since })
  }
  const traffic = trafficLoop(env, pa, account)
  try {
    await waitFor(() => traffic.counts.newConnections >= 3, { timeoutMs: 10_000, what: 'traffic on A' })
    const pidA = await pidOf(gw, 'busy')
    for (let i = 0; i < CYCLES; i++) {
      await reload([routeA, { name: 'flappy', port: pb }])
      assert.equal(await queryOnce(env, pb, account, i), i)
      await reload([routeA, { name: 'flappy', port: pb, maxConnections: 10 + i }])
      assert.equal(await queryOnce(env, pb, account, i), i)
      if (i === CYCLES / 2) {
        routeA = { ...routeA, maxConnections: 500 }
        await reload([routeA, { name: 'flappy', port: pb, maxConnections: 10 + i }])
        assert.notEqual(await pidOf(gw, 'busy'), pidA, 'A was replaced')
      }
      await reload([routeA])
    }
    const before = traffic.counts
    await waitFor(() => traffic.counts.newConnections > before.newConnections + 3, { timeoutMs: 5_000, what: 'A still serving' })
    assert.equal((await gw.routes()).length, 1)
  } finally {
    await traffic.stop()
    const { code } = await gw.stop()
    assert.equal(code, 0)
  }
  assert.deepEqual(traffic.failures, [], 'not a single failed query or connection on A')
  assert.ok(traffic.counts.persistentQueries > 100, `persistent session kept querying (${traffic.counts.persistentQueries})`)
})

async function pidOf(gw: GatewayRun, name: string): Promise<number | undefined> {
  return (await gw.routes()).find((r) => r.name === name)?.pid
}
