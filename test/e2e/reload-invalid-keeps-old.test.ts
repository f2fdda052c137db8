/**
 * A broken file never takes down what runs: invalid YAML and schema violations are logged with file, line and
 * key; every route keeps serving (open sessions and new connections); a later valid save applies normally.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { connectTls, queryOnce } from './support/clients.js'
import { gatewayYaml, writeInPlace } from './support/config-files.js'
import { startGateway } from './support/gateway-run.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_invalid' })))
after(() => db.close())

test('invalid YAML and schema violations are rejected with positions; old routes keep serving', async () => {
  const configPath = path.join(tmpDir('reload-invalid'), 'gateway.yaml')
  const [pa, pb, adminPort] = [await freePort(), await freePort(), await freePort()]
  const good = gatewayYaml(env, { routes: [{ name: 'alpha', port: pa }], adminPort })
  await writeInPlace(configPath, good)
  const gw = await startGateway(configPath, { adminPort })
  try {
    const held = await connectTls(env, pa, account)
    const pid = (await gw.routes())[0]!.pid

    // 1. Not YAML at all (an unterminated flow sequence appended as a new route).
    let since = gw.mark()
    await writeInPlace(configPath, `${good}  - name: beta\n    listen: [127.0.0.1:${pb}\n`)
    let rejected = await gw.waitForLog((l) => l.msg === 'reload rejected, running configuration kept', 'yaml rejection', { since })
    assert.equal(rejected.file, configPath)
    const yamlProblems = rejected.problems as string[]
    assert.ok(yamlProblems.length >= 1)
    assert.match(yamlProblems[0]!, new RegExp(`^${escape(configPath)}:\\d+:\\d+`), 'names file, line and column')

    // 2. Valid YAML, schema violations: each problem names the line and the key path.
    since = gw.mark()
    const lines = good.split('\n')
    const routeLine = lines.findIndex((l) => l.includes('- name: alpha')) + 1
    const broken = `${good}    maxConnections: -5\n    bogusKey: 1\n`
    await writeInPlace(configPath, broken)
    rejected = await gw.waitForLog((l) => l.msg === 'reload rejected, running configuration kept', 'schema rejection', { since })
    const problems = rejected.problems as string[]
    const max = problems.find((p) => p.includes('maxConnections'))
    const bogus = problems.find((p) => p.includes('bogusKey'))
    assert.ok(max && bogus, `both problems listed: ${JSON.stringify(problems)}`)
    assert.match(max, new RegExp(`^${escape(configPath)}:${routeLine + 4}:\\d+ routes\\[0\\]\\.maxConnections: `))
    assert.match(bogus, new RegExp(`^${escape(configPath)}:${routeLine + 5}:\\d+ routes\\[0\\]\\.bogusKey: `))

    // Nothing changed: same child, open session answers, new connections work, reload counted as rejected.
    assert.equal((await gw.routes())[0]!.pid, pid)
    const [rows] = await held.query('SELECT 5 AS n')
    assert.equal((rows as Array<{ n: number }>)[0]!.n, 5)
    assert.equal(await queryOnce(env, pa, account, 6), 6)
    assert.match((await gw.admin('/metrics')).body, /mysqlgw_config_reloads_total\{result="rejected"\} 2/)

    // 3. Fixed: the next valid save applies.
    since = gw.mark()
    await writeInPlace(configPath, gatewayYaml(env, { routes: [{ name: 'alpha', port: pa }, { name: 'beta', port: pb }], adminPort }))
    await gw.waitForLog((l) => l.msg === 'reload applied', 'reload applied', { since })
    assert.equal(await queryOnce(env, pb, account, 8), 8)
    assert.equal((await gw.routes()).find((r) => r.name === 'alpha')!.pid, pid)
    await held.end()
  } finally {
    const { code } = await gw.stop()
    assert.equal(code, 0)
  }
})

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
