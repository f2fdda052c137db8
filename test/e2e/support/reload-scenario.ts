/**
 * The add / change / remove scenario shared by the reload tests, parameterized by how the new file is saved
 * (in place, atomic rename, ConfigMap symlink swap) and how the reload is triggered (file watch or SIGHUP).
 */
import assert from 'node:assert/strict'
import type { TestEnv } from '../../helpers/env.js'
import type { Account } from '../../helpers/mariadb.js'
import { freePort } from '../../helpers/cli.js'
import { waitFor } from '../../helpers/wait.js'
import { connectTls, queryOnce } from './clients.js'
import { gatewayYaml, type E2eRoute } from './config-files.js'
import { startGateway, type GatewayRun } from './gateway-run.js'

export interface ScenarioOptions {
  env: TestEnv
  account: Account
  /** Path the gateway is started with. */
  configPath: string
  /** Saves new YAML text at configPath (in place, atomically, by ConfigMap swap...). */
  save(text: string): Promise<void>
  /** Triggers the reload after a save; by default the file watch does it. */
  trigger?: 'file' | 'SIGHUP'
}

/** Applies one change and waits for the supervisor's "reload applied" line for it. */
async function reloadWith(gw: GatewayRun, opts: ScenarioOptions, text: string): Promise<void> {
  const since = gw.mark()
  await opts.save(text)
  if (opts.trigger === 'SIGHUP') gw.signal('SIGHUP')
  const applied = await gw.waitForLog((l) => l.msg === 'reload applied', 'reload applied', { since })
  assert.equal(applied.trigger, opts.trigger ?? 'file')
}

async function pidOf(gw: GatewayRun, name: string): Promise<number | undefined> {
  return (await gw.routes()).find((r) => r.name === name)?.pid
}

export async function addChangeRemove(opts: ScenarioOptions): Promise<void> {
  const { env, account } = opts
  const [pa, pb, adminPort] = [await freePort(), await freePort(), await freePort()]
  const alpha: E2eRoute = { name: 'alpha', port: pa }
  const beta: E2eRoute = { name: 'beta', port: pb }
  await opts.save(gatewayYaml(env, { routes: [alpha], adminPort }))
  const gw = await startGateway(opts.configPath, { adminPort })
  try {
    const held = await connectTls(env, pa, account)
    const alphaPid = await pidOf(gw, 'alpha')
    assert.ok(alphaPid)

    // Add: beta starts; alpha is untouched (same child, the open session keeps working).
    await reloadWith(gw, opts, gatewayYaml(env, { routes: [alpha, beta], adminPort }))
    assert.equal(await queryOnce(env, pb, account, 2), 2)
    const betaPid = await pidOf(gw, 'beta')
    assert.ok(betaPid)
    assert.equal(await pidOf(gw, 'alpha'), alphaPid)

    // Change: beta gets a new child; alpha still untouched.
    await reloadWith(gw, opts, gatewayYaml(env, { routes: [alpha, { ...beta, maxConnections: 50 }], adminPort }))
    const betaPid2 = await pidOf(gw, 'beta')
    assert.ok(betaPid2 && betaPid2 !== betaPid, 'a changed route runs in a new child')
    assert.equal(await queryOnce(env, pb, account, 3), 3)
    assert.equal(await pidOf(gw, 'alpha'), alphaPid)

    // Remove: beta stops accepting and leaves /routes once drained.
    await reloadWith(gw, opts, gatewayYaml(env, { routes: [alpha], adminPort }))
    await assert.rejects(queryOnce(env, pb, account), /ECONNREFUSED/)
    await waitFor(async () => (await gw.routes()).every((r) => r.name !== 'beta'), {
      timeoutMs: 5_000,
      what: 'beta gone from /routes',
    })

    const [rows] = await held.query('SELECT 42 AS n')
    assert.equal((rows as Array<{ n: number }>)[0]!.n, 42, 'session opened before every reload still answers')
    await held.end()
    assert.equal(await pidOf(gw, 'alpha'), alphaPid)
    if (opts.trigger === 'SIGHUP') {
      // The watcher saw every save too, but it was told about the content SIGHUP applied: no second reload.
      const doubled = gw.logs.filter((l) => l.msg === 'reload applied' && l.trigger === 'file')
      assert.deepEqual(doubled, [])
    }
  } finally {
    const { code } = await gw.stop()
    assert.equal(code, 0, `gateway exit code; stderr: ${gw.stderr()}`)
  }
}
