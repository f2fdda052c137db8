/**
 * A bind error belongs to the route that caused it: the other routes start and serve, the blocked one is
 * reported down (and not ready) and comes up by itself once its port is free. When nothing at all can start,
 * the gateway exits with code 1.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { waitFor } from '../helpers/wait.js'
import { queryOnce } from './support/clients.js'
import { gatewayYaml, writeInPlace } from './support/config-files.js'
import { startGateway } from './support/gateway-run.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_bind' })))
after(() => db.close())

async function occupy(): Promise<net.Server> {
  const server = net.createServer((s) => s.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

test('one route on a busy port: the others serve, it is down, and it starts once the port is free', async () => {
  const configPath = path.join(tmpDir('bind-error'), 'gateway.yaml')
  const blocker = await occupy()
  const busyPort = (blocker.address() as net.AddressInfo).port
  const [okPort, adminPort] = [await freePort(), await freePort()]
  await writeInPlace(
    configPath,
    gatewayYaml(env, { routes: [{ name: 'fine', port: okPort }, { name: 'blocked', port: busyPort }], adminPort })
  )
  const gw = await startGateway(configPath, { adminPort, waitReady: false })
  try {
    const failure = await gw.waitForLog((l) => l.msg === 'listener failed to start', 'bind failure log')
    assert.equal(failure.code, 'GW_ERR_LISTEN')
    assert.equal(failure.route, 'blocked')
    assert.match(String((failure.err as { message?: string })?.message), new RegExp(`127\\.0\\.0\\.1:${busyPort}: EADDRINUSE`))
    await waitFor(async () => (await gw.admin('/readyz')).status === 503, { timeoutMs: 10_000, what: 'admin up, not ready' })
    assert.equal(await queryOnce(env, okPort, account, 4), 4)
    const states = Object.fromEntries((await gw.routes()).map((r) => [r.name, r.state]))
    assert.deepEqual(states, { fine: 'ready', blocked: 'down' })

    await new Promise((r) => blocker.close(r))
    await waitFor(async () => (await gw.admin('/readyz')).status === 200, { timeoutMs: 8_000, what: 'blocked route recovered' })
    assert.equal(await queryOnce(env, busyPort, account, 5), 5)
  } finally {
    blocker.close()
    const { code } = await gw.stop()
    assert.equal(code, 0)
  }
})

test('no listener can start: exit code 1 with the reason logged', async () => {
  const configPath = path.join(tmpDir('bind-error-all'), 'gateway.yaml')
  const blocker = await occupy()
  try {
    const busyPort = (blocker.address() as net.AddressInfo).port
    await writeInPlace(configPath, gatewayYaml(env, { routes: [{ name: 'only', port: busyPort }] }))
    const gw = await startGateway(configPath)
    const { code } = await waitFor(() => gw.exited, { timeoutMs: 15_000, what: 'gateway exit' })
    assert.equal(code, 1)
    assert.ok(gw.logs.some((l) => l.msg === 'no listener could start, exiting'))
  } finally {
    blocker.close()
  }
})
