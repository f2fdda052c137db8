import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { installSignalHandlers, type SignalSource } from '../../../src/supervisor/signals.js'

function setup() {
  const source = new EventEmitter()
  const calls: string[] = []
  const uninstall = installSignalHandlers(
    {
      reload: () => calls.push('reload'),
      shutdown: (s) => calls.push(`shutdown:${s}`),
      force: (s) => calls.push(`force:${s}`),
      ignored: (s) => calls.push(`ignored:${s}`),
    },
    source as unknown as SignalSource
  )
  return { source, calls, uninstall }
}

describe('installSignalHandlers', () => {
  it('SIGHUP reloads, each time', () => {
    const { source, calls } = setup()
    source.emit('SIGHUP')
    source.emit('SIGHUP')
    assert.deepEqual(calls, ['reload', 'reload'])
  })

  it('first SIGTERM drains, a second SIGTERM or SIGINT forces', () => {
    const { source, calls } = setup()
    source.emit('SIGTERM')
    source.emit('SIGINT')
    assert.deepEqual(calls, ['shutdown:SIGTERM', 'force:SIGINT'])
  })

  it('SIGHUP during the drain is ignored, not a reload and not fatal', () => {
    const { source, calls } = setup()
    source.emit('SIGINT')
    source.emit('SIGHUP')
    assert.deepEqual(calls, ['shutdown:SIGINT', 'ignored:SIGHUP'])
  })

  it('uninstall removes every handler', () => {
    const { source, uninstall } = setup()
    uninstall()
    for (const s of ['SIGHUP', 'SIGTERM', 'SIGINT']) assert.equal(source.listenerCount(s), 0)
  })
})
