import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { groupListeners } from '../../../src/config/types.js'
import { bindListenHandle, type ListenHandle } from '../../../src/supervisor/listen-handle.js'
import { SparePool } from '../../../src/supervisor/spare-pool.js'
import { waitFor } from '../../helpers/wait.js'
import { greetOnce } from './net-probe.js'
import { route } from './routes.js'

const FAKE_CHILD = fileURLToPath(new URL('./fake-child.js', import.meta.url))
const logger = pino({ level: 'silent' })
const started: ChildProcess[] = []
const handles: ListenHandle[] = []
after(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const h of handles) h.close()
})

const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null

describe('SparePool', () => {
  it('hands out the pre-forked child, which serves once started, and refills', async () => {
    const pool = new SparePool(FAKE_CHILD, logger)
    pool.fill()
    // Let the spare finish loading, as it would between two restarts.
    await new Promise((r) => setTimeout(r, 300))
    const child = pool.take()
    started.push(child)
    const handle = await bindListenHandle({ host: '127.0.0.1', port: 0 })
    handles.push(handle)
    const ready = new Promise((resolve) => child.on('message', (m: { type: string }) => m.type === 'ready' && resolve(m)))
    child.send({ type: 'start', listener: groupListeners([route('warm', handle.port)])[0], log: { level: 'info', format: 'json' } }, handle.handle as never)
    await ready
    assert.equal(await greetOnce(handle.port), `warm@${child.pid}`)
    const next = pool.take()
    started.push(next)
    assert.notEqual(next.pid, child.pid, 'a new spare was forked after the first was taken')
    pool.close()
    child.disconnect()
    next.disconnect()
    await waitFor(() => !alive(child) && !alive(next), { timeoutMs: 5_000, what: 'children exit when their channel closes' })
  })

  it('close() lets the idle spare exit and stops refilling', async () => {
    const pool = new SparePool(FAKE_CHILD, logger)
    pool.fill()
    const spare = pool.take() // the filled spare; take() also schedules a refill
    started.push(spare)
    pool.close()
    spare.disconnect()
    await waitFor(() => !alive(spare), { timeoutMs: 15_000, what: 'spare exit' })
    await new Promise((r) => setTimeout(r, 100))
    // After close(), take() still works (forks directly) but nothing is kept in reserve.
    const direct = pool.take()
    started.push(direct)
    direct.disconnect()
    await waitFor(() => !alive(direct), { timeoutMs: 15_000, what: 'direct child exit' })
  })
})
