/**
 * Settings outside the routes apply on reload without touching any route: log.level reaches the running
 * children (no restart), and a new admin.listen moves the admin server.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
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
before(async () => (account = await createAccount(db, { user: 'e2e_settings' })))
after(() => db.close())

test('log.level and admin.listen change on reload; the route keeps its child', async () => {
  const configPath = path.join(tmpDir('reload-settings'), 'gateway.yaml')
  const [port, admin1, admin2] = [await freePort(), await freePort(), await freePort()]
  const routes = [{ name: 'steady', port }]
  await writeInPlace(configPath, gatewayYaml(env, { routes, adminPort: admin1, logLevel: 'info' }))
  const gw = await startGateway(configPath, { adminPort: admin1 })
  try {
    const pid = (await gw.routes())[0]!.pid
    let since = gw.mark()
    await queryOnce(env, port, account)
    await gw.waitForLog((l) => l.msg === 'connection closed' && l.route === 'steady', 'connection summary line', { since })
    assert.equal(gw.logs.slice(since).filter((l) => l.level === 20).length, 0, 'no debug lines at info')

    since = gw.mark()
    await writeInPlace(configPath, gatewayYaml(env, { routes, adminPort: admin2, logLevel: 'debug' }))
    await gw.waitForLog((l) => l.msg === 'reload applied', 'reload applied', { since })
    since = gw.mark()
    await queryOnce(env, port, account)
    const debug = await gw.waitForLog((l) => l.level === 20 && l.route === 'steady' && l.pid === pid, 'debug line from the running child', { since })
    assert.ok(debug)

    // The admin server moved: the old port refuses, the new one answers and shows the same child.
    await assert.rejects(gw.admin('/readyz'), /ECONNREFUSED/)
    const routesNow = JSON.parse((await adminGet(admin2, '/routes')).body) as Array<{ pid: number }>
    assert.equal(routesNow[0]!.pid, pid, 'no restart for settings outside the route')
    await waitFor(async () => (await adminGet(admin2, '/readyz')).status === 200, { timeoutMs: 5_000, what: 'ready on new admin port' })
  } finally {
    const { code } = await gw.stop()
    assert.equal(code, 0)
  }
})

async function adminGet(port: number, pathname: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`, { signal: AbortSignal.timeout(3_000) })
  return { status: res.status, body: await res.text() }
}
