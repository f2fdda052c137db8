/**
 * The route child sets TCP keepalive once on the listening socket and accepted sockets inherit it (Linux), so it
 * must follow the config: on by default, off after a reload that sets `tcpKeepAlive: false`, on again after one
 * that removes it. `ss -o` shows a keepalive timer only on sockets with SO_KEEPALIVE set.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import path from 'node:path'
import type { TLSSocket } from 'node:tls'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { connectTls, type Conn } from './support/clients.js'
import { gatewayYaml, writeInPlace } from './support/config-files.js'
import { startGateway, type GatewayRun } from './support/gateway-run.js'

const execFileAsync = promisify(execFile)
const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_keepalive' })))
after(() => db.close())

/** The gateway's side of this client connection, as `ss` prints it. */
async function gatewaySide(port: number, c: Conn): Promise<string> {
  const local = (c as unknown as { connection: { stream: TLSSocket } }).connection.stream.localPort
  const { stdout } = await execFileAsync('ss', ['-tnoH', 'state', 'established', `( sport = :${port} and dport = :${local} )`], {
    timeout: 5_000,
  })
  assert.ok(stdout.trim(), `ss found the gateway side of 127.0.0.1:${local} -> :${port}`)
  return stdout
}

async function reload(gw: GatewayRun, configPath: string, text: string): Promise<void> {
  const since = gw.mark()
  await writeInPlace(configPath, text)
  gw.signal('SIGHUP')
  await gw.waitForLog((l) => l.msg === 'reload applied', 'reload applied', { since })
}

test('keepalive on accepted sockets follows tcpKeepAlive across reloads', async () => {
  const configPath = path.join(tmpDir('tcp-keepalive'), 'gateway.yaml')
  const [port, adminPort] = [await freePort(), await freePort()]
  const withKeepAlive = gatewayYaml(env, { routes: [{ name: 'ka', port }], adminPort })
  const withoutKeepAlive = withKeepAlive.replace('defaults:\n', 'defaults:\n  tcpKeepAlive: false\n')
  assert.notEqual(withoutKeepAlive, withKeepAlive)
  await writeInPlace(configPath, withKeepAlive)
  const gw = await startGateway(configPath, { adminPort })
  const open: Conn[] = []
  try {
    const first = await connectTls(env, port, account)
    open.push(first)
    assert.match(await gatewaySide(port, first), /timer:\(keepalive/)

    await reload(gw, configPath, withoutKeepAlive)
    const second = await connectTls(env, port, account)
    open.push(second)
    assert.doesNotMatch(await gatewaySide(port, second), /timer:\(keepalive/)

    await reload(gw, configPath, withKeepAlive)
    const third = await connectTls(env, port, account)
    open.push(third)
    assert.match(await gatewaySide(port, third), /timer:\(keepalive/)
  } finally {
    for (const c of open) await c.end().catch(() => {})
    const { code } = await gw.stop()
    assert.equal(code, 0, `gateway exit code; stderr: ${gw.stderr()}`)
  }
})
