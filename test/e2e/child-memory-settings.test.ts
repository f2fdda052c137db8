/** The route child the real CLI starts runs with the memory settings of src/supervisor/child-fork.ts. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { gatewayYaml, writeInPlace } from './support/config-files.js'
import { startGateway } from './support/gateway-run.js'

const env = testEnv()

test('route child: --max-semi-space-size=1 and MALLOC_ARENA_MAX=2; the supervisor keeps the defaults', async () => {
  const configPath = path.join(tmpDir('child-memory'), 'gateway.yaml')
  const [port, adminPort] = [await freePort(), await freePort()]
  await writeInPlace(configPath, gatewayYaml(env, { routes: [{ name: 'mem', port }], adminPort }))
  const gw = await startGateway(configPath, { adminPort })
  try {
    const childPid = (await gw.routes())[0]!.pid!
    const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    assert.ok(argv(childPid).includes('--max-semi-space-size=1'), argv(childPid).join(' '))
    assert.ok(environ(childPid).includes('MALLOC_ARENA_MAX=2'))
    assert.ok(!argv(gw.pid).some((a) => a.startsWith('--max-semi-space-size')))
  } finally {
    const { code } = await gw.stop()
    assert.equal(code, 0, `gateway exit code; stderr: ${gw.stderr()}`)
  }
})
