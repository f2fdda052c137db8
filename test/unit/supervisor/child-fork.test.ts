import { test } from 'node:test'
import assert from 'node:assert/strict'
import { childForkOptions } from '../../../src/supervisor/child-fork.js'

test('children get a 1 MiB semi-space and two malloc arenas by default, after the parent flags', () => {
  const o = childForkOptions(['--enable-source-maps'], { PATH: '/bin' })
  assert.deepEqual(o.execArgv, ['--enable-source-maps', '--max-semi-space-size=1'])
  assert.equal(o.env?.MALLOC_ARENA_MAX, '2')
  assert.equal(o.env?.PATH, '/bin')
  assert.equal(o.serialization, 'json')
  assert.deepEqual(o.stdio, ['ignore', 'inherit', 'inherit', 'ipc'])
})

test("an operator's semi-space (execArgv or NODE_OPTIONS) and MALLOC_ARENA_MAX win", () => {
  assert.deepEqual(childForkOptions(['--max-semi-space-size=8'], {}).execArgv, ['--max-semi-space-size=8'])
  const viaEnv = childForkOptions([], { NODE_OPTIONS: '--trace-warnings --max-semi-space-size=4', MALLOC_ARENA_MAX: '8' })
  assert.deepEqual(viaEnv.execArgv, [])
  assert.equal(viaEnv.env?.MALLOC_ARENA_MAX, '8')
})
