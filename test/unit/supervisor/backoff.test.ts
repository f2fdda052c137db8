import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Backoff } from '../../../src/supervisor/backoff.js'

describe('Backoff', () => {
  it('doubles from 100 ms and caps at 10 s', () => {
    const b = new Backoff()
    const delays = Array.from({ length: 10 }, () => b.nextDelay(0))
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000])
  })

  it('stays capped (no overflow) after very many crashes', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 10_000 })
    let last = 0
    for (let i = 0; i < 5000; i++) last = b.nextDelay(i)
    assert.equal(last, 10_000)
  })

  it('starts over after the child stayed healthy for resetAfterMs', () => {
    const b = new Backoff({ resetAfterMs: 30_000 })
    b.nextDelay(0)
    b.nextDelay(0)
    b.nextDelay(0)
    b.healthy(1_000)
    assert.equal(b.nextDelay(1_000 + 29_999), 800, 'crashing before the reset period keeps growing')
    b.healthy(50_000)
    assert.equal(b.nextDelay(80_000), 100, 'a long healthy run resets the delay')
    assert.equal(b.nextDelay(80_000), 200)
  })

  it('a ready child that crashes at once does not reset', () => {
    const b = new Backoff()
    for (let i = 0; i < 4; i++) {
      b.healthy(i * 10)
      b.nextDelay(i * 10 + 5)
    }
    assert.equal(b.nextDelay(100), 1600)
    b.reset()
    assert.equal(b.nextDelay(100), 100)
  })
})
