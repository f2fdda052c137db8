/**
 * kill -9 of the supervisor: its proxy processes notice the closed IPC channel, stop accepting at once, let the
 * open session finish, and exit; the idle spare exits at once. Nothing keeps serving unsupervised.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
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
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_orphan' })))
after(() => db.close())

/** Pids whose parent is `ppid` (Linux /proc). */
function childrenOf(ppid: number): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid; the command name (field 2) may contain spaces.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[1]) === ppid) pids.push(Number(entry))
    } catch {
      // the process ended while we looked
    }
  }
  return pids
}

test('supervisor killed with SIGKILL: children stop accepting, finish the open session, exit', async () => {
  const configPath = path.join(tmpDir('no-orphans'), 'gateway.yaml')
  const [port, adminPort] = [await freePort(), await freePort()]
  await writeInPlace(configPath, gatewayYaml(env, { routes: [{ name: 'orphan', port }], adminPort, drainTimeout: '20s' }))
  const gw = await startGateway(configPath, { adminPort })
  const routeChild = (await gw.routes())[0]!.pid!
  // The route's process and the idle spare (forked right after startup).
  const children = await waitFor(() => (childrenOf(gw.pid).length >= 2 ? childrenOf(gw.pid) : undefined), {
    timeoutMs: 10_000,
    what: 'route child and spare forked',
  })
  assert.ok(children.includes(routeChild))
  const c = await connectTls(env, port, account)
  try {
    gw.signal('SIGKILL')
    await gw.exited
    await waitFor(() => refused(port), { timeoutMs: 3_000, what: 'port closed after supervisor death' })
    for (const pid of children.filter((p) => p !== routeChild)) {
      await waitFor(() => !alive(pid), { timeoutMs: 3_000, what: `idle spare ${pid} exited` })
    }
    assert.ok(alive(routeChild), 'the route process waits for its open session')
    const [rows] = await c.query('SELECT 11 AS n')
    assert.equal((rows as Array<{ n: number }>)[0]!.n, 11)
  } finally {
    await c.end().catch(() => {})
  }
  await waitFor(() => !alive(routeChild), { timeoutMs: 5_000, what: 'route process exits once drained' })
})
