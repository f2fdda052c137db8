/**
 * A config edit saved while the gateway is still starting (file loaded, children forking, file watch not yet
 * running) is applied once the gateway is up; it must not become the watch's baseline while the old content
 * runs, which would lose it until some later edit.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { waitFor } from '../helpers/wait.js'
import { queryOnce } from './support/clients.js'
import { gatewayYaml, writeAtomic } from './support/config-files.js'
import { startGateway } from './support/gateway-run.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_startup_edit' })))
after(() => db.close())

test('an edit saved during startup is applied, not taken as the baseline', async () => {
  const configPath = path.join(tmpDir('reload-during-startup'), 'gateway.yaml')
  const [pa, pb, adminPort] = [await freePort(), await freePort(), await freePort()]
  await writeAtomic(configPath, gatewayYaml(env, { routes: [{ name: 'alpha', port: pa }], adminPort }))
  const gw = await startGateway(configPath, { adminPort, waitReady: false })
  try {
    // The file has been loaded once a child is forked; the watch starts only after every child is ready.
    await gw.waitForLog((l) => l.msg === 'child started' && l.route === 'alpha', 'alpha child started')
    await writeAtomic(configPath, gatewayYaml(env, { routes: [{ name: 'alpha', port: pa }, { name: 'beta', port: pb }], adminPort }))

    await gw.waitForLog((l) => l.msg === 'reload applied', 'reload applied', { timeoutMs: 10_000 })
    const beta = await waitFor(
      async () => (await gw.routes()).find((r) => r.name === 'beta' && r.state === 'ready'),
      { timeoutMs: 10_000, what: 'beta ready in /routes' }
    )
    assert.equal(beta.listen, `127.0.0.1:${pb}`)
    assert.equal(await queryOnce(env, pb, account, 4), 4)
  } finally {
    const { code } = await gw.stop()
    assert.equal(code, 0)
  }
})
