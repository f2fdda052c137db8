/**
 * admin.shutdownDelay: how long the listeners keep accepting after a SIGTERM turned /readyz 503. A duration
 * like the others, 0 when omitted, and rejected (with its position) when it is not one or exceeds Node's
 * timer limit.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { loadConfigFile } from '../../../src/config/load.js'
import { q, workspace, type Workspace } from './fixtures.js'

let ws: Workspace
before(async () => {
  ws = await workspace()
})
after(() => ws.cleanup())

/** `admin` on line 1, one valid route below it. */
function file(admin: string): string {
  return [
    `admin: ${admin}`,
    'routes:',
    '  - name: a',
    '    listen: 127.0.0.1:3307',
    '    backend: 127.0.0.1:3306',
    `    tls: { cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)} }`,
    '',
  ].join('\n')
}

describe('admin.shutdownDelay', () => {
  test('omitted: 0, the listeners close as soon as the shutdown begins', async () => {
    const config = await loadConfigFile(await ws.write(file('{ listen: 9090 }')))
    assert.deepEqual(config.admin, { listen: { host: '127.0.0.1', port: 9090 }, shutdownDelayMs: 0 })
  })

  const good: Array<[string, number]> = [
    ['1s', 1_000],
    ['"1m30s"', 90_000],
    ['500ms', 500],
    ['2500', 2_500],
    ['0s', 0],
    ['0', 0],
    ['596h', 596 * 3_600_000],
  ]
  for (const [spelled, ms] of good) {
    test(`${spelled} is ${ms} ms`, async () => {
      const config = await loadConfigFile(await ws.write(file(`{ listen: 9090, shutdownDelay: ${spelled} }`)))
      assert.equal(config.admin?.shutdownDelayMs, ms)
    })
  }

  const duration = 'must be a duration such as "500ms", "5s", "1m30s" or "8h", or an integer of milliseconds'
  const bad: Array<[string, string[]]> = [
    ['5 sec', [`1:39 admin.shutdownDelay: ${duration}`]],
    ['1.5s', [`1:39 admin.shutdownDelay: ${duration}`]],
    ['-1', [`1:39 admin.shutdownDelay: ${duration}`]],
    ['true', [`1:39 admin.shutdownDelay: ${duration}`]],
    ['597h', ['1:39 admin.shutdownDelay: must be at most 596h (2147483647 ms, the longest timer Node.js supports)']],
  ]
  for (const [spelled, expected] of bad) {
    test(`${spelled} is rejected at its position`, async () => {
      assert.deepEqual(await ws.problems(file(`{ listen: 9090, shutdownDelay: ${spelled} }`)), expected)
    })
  }

  test('a bad delay does not hide a problem of admin.listen found in the same pass', async () => {
    const problems = await ws.problems(file('{ listen: 3307, shutdownDelay: 597h }'))
    assert.deepEqual(problems, [
      '1:18 admin.listen: collides with the listen address of routes[0] "a" (line 3)',
      '1:39 admin.shutdownDelay: must be at most 596h (2147483647 ms, the longest timer Node.js supports)',
    ])
  })

  test('a key of the admin mapping only: not accepted under defaults or a route', async () => {
    const problems = await ws.problems(`defaults: { shutdownDelay: 1s }\n${file('{ listen: 9090 }')}`)
    assert.deepEqual(problems, ['1:13 defaults.shutdownDelay: unknown key'])
  })
})
