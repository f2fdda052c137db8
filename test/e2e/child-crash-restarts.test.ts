/**
 * kill -9 of one route's child: that route serves again within 2 s on the same port (the supervisor holds the
 * listening socket, so clients arriving meanwhile wait instead of being refused); the other route never notices.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { waitFor } from '../helpers/wait.js'
import { queryOnce, trafficLoop } from './support/clients.js'
import { gatewayYaml, writeInPlace } from './support/config-files.js'
import { startGateway } from './support/gateway-run.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_crash' })))
after(() => db.close())

test('kill -9 of a route child: back within 2 s, other routes unaffected, restart counted', async () => {
  const configPath = path.join(tmpDir('child-crash'), 'gateway.yaml')
  const [pa, pb, adminPort] = [await freePort(), await freePort(), await freePort()]
  await writeInPlace(configPath, gatewayYaml(env, { routes: [{ name: 'victim', port: pa }, { name: 'bystander', port: pb }], adminPort }))
  const gw = await startGateway(configPath, { adminPort })
  const traffic = trafficLoop(env, pb, account)
  try {
    await waitFor(() => traffic.counts.newConnections >= 3 && traffic.counts.persistentQueries >= 10, {
      timeoutMs: 10_000,
      what: 'bystander traffic flowing',
    })
    const before = Object.fromEntries((await gw.routes()).map((r) => [r.name, r.pid]))
    process.kill(before.victim!, 'SIGKILL')
    const killedAt = Date.now()
    // The first attempt is made at once, during the gap: it must wait in the backlog, not be refused.
    assert.equal(await queryOnce(env, pa, account, 9), 9)
    const backAfterMs = Date.now() - killedAt
    assert.ok(backAfterMs < 2_000, `victim served again after ${backAfterMs} ms`)

    const now = Object.fromEntries((await gw.routes()).map((r) => [r.name, r]))
    assert.notEqual(now.victim!.pid, before.victim)
    assert.equal(now.victim!.state, 'ready')
    assert.equal(now.bystander!.pid, before.bystander)
    const metrics = (await gw.admin('/metrics')).body
    assert.match(metrics, /mysqlgw_child_restarts_total\{route="victim"\} 1/)
    assert.match(metrics, /mysqlgw_child_restarts_total\{route="bystander"\} 0/)
    const exitLine = gw.logs.find((l) => l.msg === 'child exited' && l.route === 'victim')
    assert.equal(exitLine?.signal, 'SIGKILL')

    const mark = traffic.counts
    await waitFor(() => traffic.counts.newConnections > mark.newConnections + 2, { timeoutMs: 5_000, what: 'more traffic' })
  } finally {
    await traffic.stop()
    const { code } = await gw.stop()
    assert.equal(code, 0)
  }
  assert.deepEqual(traffic.failures, [], 'bystander saw no failure')
})
