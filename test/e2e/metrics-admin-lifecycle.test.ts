/**
 * Admin endpoints and metrics across the gateway's lifecycle, through the real CLI: a reload seen in /routes and
 * in the reload counters, a valid and an invalid edit, kill -9 of a child (counters never go down, restart
 * counted, exit logged with its signal), and a SIGTERM drain (/readyz 503 from its first moment, /healthz 200
 * until the process is gone). The tests share one gateway and run in order; the last one stops it.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { waitFor } from '../helpers/wait.js'
import type { RouteView } from '../../src/admin/view.js'
import { connectTls, queryOnce } from './support/clients.js'
import { writeAtomic } from './support/config-files.js'
import { startGateway, type GatewayRun, type LogLine } from './support/gateway-run.js'
import { metricsYaml, routeCert, scrape, scrapeUntil, val, type MaRoute, type RouteCert } from './support/metrics-admin.js'
import { alive } from './support/probes.js'

const env = testEnv()
const db = harnessMariaDb(env)
const M = (name: string) => `mysqlgw_${name}`
const RELOADS = M('config_reloads_total')
const LAST_RELOAD = M('config_last_reload_success_timestamp_seconds')
const ACCEPTED = M('connections_accepted_total')
const RESTARTS = M('child_restarts_total')

let account: Account
let gw: GatewayRun
let exited = false
let configPath: string
let adminPort: number
let routes: MaRoute[]
let echoCert: RouteCert

before(async () => {
  ;[account, echoCert] = await Promise.all([
    createAccount(db, { user: 'e2e_lifecycle' }),
    routeCert(env, `lifecycle-echo-${randomBytes(3).toString('hex')}.test`, 20),
  ])
  configPath = path.join(tmpDir('metrics-lifecycle'), 'gateway.yaml')
  adminPort = await freePort()
  const shared = { backendPort: env.mariadb.port, cert: env.pki.cert, key: env.pki.key }
  routes = [
    { name: 'alpha', port: await freePort(), ...shared },
    { name: 'bravo', port: await freePort(), ...shared },
  ]
  await writeAtomic(configPath, metricsYaml({ adminPort, routes, drainTimeout: '5s' }))
  gw = await startGateway(configPath, { adminPort })
  void gw.exited.then(() => (exited = true))
})

after(async () => {
  if (!exited) await gw?.stop()
  await db.close()
})

const byName = async (): Promise<Record<string, RouteView>> => Object.fromEntries((await gw.routes()).map((r) => [r.name, r]))
const logged = (match: (l: LogLine) => boolean, since = 0): LogLine | undefined => gw.logs.slice(since).find(match)

test('supervisor logs child started and child ready for every route at startup', () => {
  for (const r of routes) {
    const started = logged((l) => l.msg === 'child started' && l.route === r.name)
    const ready = logged((l) => l.msg === 'child ready' && l.route === r.name)
    assert.ok(started && ready, `started and ready lines for ${r.name}`)
    assert.equal(typeof started.childPid, 'number')
    assert.equal(ready.childPid, started.childPid)
  }
})

test('an added route shows up in /routes, ready with pid, addresses and certificate; reload counters move', async () => {
  const before = await scrape(gw)
  assert.equal(val(before, LAST_RELOAD), 0, 'no reload applied yet')
  const echo: MaRoute = { name: 'echo', port: await freePort(), backendPort: env.mariadb.port, cert: echoCert.cert, key: echoCert.key }
  const since = gw.mark()
  const t0 = Date.now() / 1000
  await writeAtomic(configPath, metricsYaml({ adminPort, routes: [...routes, echo], drainTimeout: '5s' }))

  // Only /routes is polled: it must show the certificate without a /metrics scrape.
  const view = await waitFor(
    async () => {
      const v = (await byName()).echo
      return v?.state === 'ready' && v.pid && v.cert ? v : undefined
    },
    { timeoutMs: 10_000, what: 'echo ready in /routes with pid and cert' }
  )
  assert.equal(view.listen, `127.0.0.1:${echo.port}`)
  assert.equal(view.backend, `127.0.0.1:${env.mariadb.port}`)
  assert.match(view.cert!.subject, new RegExp(`CN=${echoCert.cn.replace(/\./g, '\\.')}`))
  assert.equal(view.cert!.notAfter, echoCert.notAfterIso)
  assert.ok(alive(view.pid!), 'the pid in /routes is a running process')
  const others = await byName()
  assert.ok(view.pid !== others.alpha!.pid && view.pid !== others.bravo!.pid, 'its own child')
  const applied = await gw.waitForLog((l) => l.msg === 'reload applied', 'reload applied', { since })
  assert.equal(applied.trigger, 'file')
  assert.ok(logged((l) => l.msg === 'child ready' && l.route === 'echo' && l.childPid === view.pid, since), 'child ready logged for echo')
  assert.equal(await queryOnce(env, echo.port, account, 3), 3)

  const afterApplied = await scrape(gw)
  assert.equal(val(afterApplied, RELOADS, { result: 'applied' }), val(before, RELOADS, { result: 'applied' }) + 1)
  assert.equal(val(afterApplied, RELOADS, { result: 'rejected' }), val(before, RELOADS, { result: 'rejected' }))
  const ts = val(afterApplied, LAST_RELOAD)
  assert.ok(ts >= Math.floor(t0) && ts <= Date.now() / 1000 + 1, `last reload success ${ts} within the edit window (${t0})`)
  assert.equal(val(afterApplied, M('cert_not_after_timestamp_seconds'), { route: 'echo' }), echoCert.notAfterUnix)
  routes = [...routes, echo]

  // An invalid edit: rejected with its reason, counted, nothing running changes.
  const pids = Object.fromEntries(Object.values(await byName()).map((r) => [r.name, r.pid]))
  const since2 = gw.mark()
  await writeAtomic(configPath, `${metricsYaml({ adminPort, routes, drainTimeout: '5s' })}bogusTopLevelKey: 1\n`)
  const rejected = await gw.waitForLog((l) => l.msg === 'reload rejected, running configuration kept', 'reload rejected', { since: since2 })
  assert.equal(rejected.trigger, 'file')
  const problems = rejected.problems as string[]
  assert.ok(problems.some((p) => p.includes('bogusTopLevelKey')), `reason names the key: ${JSON.stringify(problems)}`)
  const afterRejected = await scrape(gw)
  assert.equal(val(afterRejected, RELOADS, { result: 'rejected' }), val(before, RELOADS, { result: 'rejected' }) + 1)
  assert.equal(val(afterRejected, RELOADS, { result: 'applied' }), val(afterApplied, RELOADS, { result: 'applied' }))
  assert.equal(val(afterRejected, LAST_RELOAD), ts, 'a rejected reload leaves the last-success timestamp alone')
  const now = await byName()
  assert.deepEqual(Object.fromEntries(Object.values(now).map((r) => [r.name, r.pid])), pids)
  assert.ok(Object.values(now).every((r) => r.state === 'ready'))
})

test('kill -9 of a child: counters never go down, the restart is counted and logged with the signal', async () => {
  assert.equal(await queryOnce(env, routes[0]!.port, account, 1), 1)
  const s0 = await scrapeUntil(gw, (s) => val(s, M('connections_open'), { route: 'alpha' }) === 0, 'alpha idle')
  const acc0 = val(s0, ACCEPTED, { route: 'alpha' })
  assert.ok(acc0 >= 1)
  const oldPid = (await byName()).alpha!.pid!
  const since = gw.mark()

  // Scrape continuously across the crash: every published value must be >= the one before it.
  const seen: number[][] = []
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const s = await scrape(gw).catch(() => undefined)
      if (s) seen.push([val(s, ACCEPTED, { route: 'alpha' }), val(s, M('connections_closed_total'), { outcome: 'ok', route: 'alpha' })])
      await sleep(20)
    }
  })()
  try {
    process.kill(oldPid, 'SIGKILL')
    const view = await waitFor(
      async () => {
        const v = (await byName()).alpha
        return v?.state === 'ready' && v.pid && v.pid !== oldPid ? v : undefined
      },
      { timeoutMs: 10_000, what: 'alpha ready again with a new pid' }
    )
    assert.equal(await queryOnce(env, routes[0]!.port, account, 2), 2)
    // Counted at accept, so the scrape after the query sees it.
    const s1 = await scrape(gw)
    assert.equal(val(s1, ACCEPTED, { route: 'alpha' }), acc0 + 1, 'before + the one new connection, nothing lost or doubled')
    assert.equal(val(s1, RESTARTS, { route: 'alpha' }), val(s0, RESTARTS, { route: 'alpha' }) + 1)
    assert.equal(val(s1, RESTARTS, { route: 'bravo' }), val(s0, RESTARTS, { route: 'bravo' }))

    const exit = logged((l) => l.msg === 'child exited' && l.route === 'alpha' && l.childPid === oldPid, since)
    assert.ok(exit, 'child exited logged')
    assert.equal(exit.signal, 'SIGKILL')
    assert.equal(exit.code, null)
    assert.equal(exit.level, 50, 'an unexpected exit is an error')
    assert.ok(logged((l) => l.msg === 'restarting child after backoff' && l.route === 'alpha' && typeof l.delayMs === 'number', since))
    assert.ok(logged((l) => l.msg === 'child started' && l.route === 'alpha' && l.childPid === view.pid, since), 'child started')
    assert.ok(logged((l) => l.msg === 'child ready' && l.route === 'alpha' && l.childPid === view.pid, since), 'child ready')
  } finally {
    sampling = false
    await sampler
  }
  assert.ok(seen.length >= 3, `scraped across the crash (${seen.length})`)
  for (let i = 1; i < seen.length; i++) {
    for (const j of [0, 1]) assert.ok(seen[i]![j]! >= seen[i - 1]![j]!, `series ${j} went down: ${JSON.stringify(seen)}`)
  }
})

function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.setTimeout(2_000, () => {
      s.destroy()
      resolve(false)
    })
    s.on('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
  })
}

const status = (p: string) => gw.admin(p).then((r) => r.status, () => 0)

test('SIGTERM: /readyz answers 503 before the listener closes and until exit; /healthz stays 200', async (t) => {
  const port = routes[0]!.port
  const held = await connectTls(env, port, account)
  await held.query('BEGIN')
  await held.query('SELECT 1')
  assert.equal(await status('/readyz'), 200)
  assert.equal(await status('/healthz'), 200)

  gw.signal('SIGTERM')
  type Obs = { refusedBefore: boolean; ready: number; refusedAfter: boolean; health: number }
  const obs: Obs[] = []
  const deadline = Date.now() + 4_000
  // Port, /readyz, port again: a refused port followed by a 200 would mean readiness dropped after the listener
  // closed; a 503 followed by an accepting port is the window in which a load balancer can stop sending.
  while (Date.now() < deadline && !exited) {
    const refusedBefore = await portRefuses(port)
    const ready = await status('/readyz')
    const refusedAfter = await portRefuses(port)
    obs.push({ refusedBefore, ready, refusedAfter, health: await status('/healthz') })
    if (obs.length >= 10 && obs.some((o) => o.refusedBefore)) break
  }
  const dump = JSON.stringify(obs)
  assert.equal(exited, false, 'still draining (the held session keeps it alive)')
  assert.ok(obs.some((o) => o.ready === 503), `readyz turned 503 while the process runs: ${dump}`)
  assert.deepEqual(obs.filter((o) => o.refusedBefore && o.ready !== 503), [], `readyz 503 no later than the listener closes: ${dump}`)
  const first503 = obs.findIndex((o) => o.ready === 503)
  assert.deepEqual(obs.slice(first503).filter((o) => o.ready !== 503), [], `readyz stays 503 until exit: ${dump}`)
  assert.deepEqual(obs.filter((o) => o.health !== 200), [], `healthz 200 while the supervisor runs: ${dump}`)
  assert.ok(obs.some((o) => o.refusedBefore), `the listener closed during the drain: ${dump}`)
  t.diagnostic(`drain observations (port refused before, readyz, port refused after): ${obs.map((o) => `${+o.refusedBefore}${o.ready}${+o.refusedAfter}`).join(' ')}`)
  assert.equal((await byName()).alpha!.state, 'draining')

  // The transaction is still usable, then ends; the gateway exits at once, with 0.
  await held.query('SELECT 2')
  await held.query('COMMIT')
  await held.end()
  const { code } = await waitFor(() => gw.exited, { timeoutMs: 4_000, what: 'exit after the last session (before drainTimeout)' })
  assert.equal(code, 0)
  assert.equal(await status('/healthz'), 0, 'admin server gone with the process')
  assert.ok(gw.logs.some((l) => l.msg === 'stopped'))
})
