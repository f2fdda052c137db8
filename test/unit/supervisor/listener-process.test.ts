/**
 * ListenerProcess and the supervisor-owned listening handle, with a fake child (fake-child.ts): the handle
 * stays in LISTEN while a child is killed and restarted, so clients wait instead of being refused.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { groupListeners } from '../../../src/config/types.js'
import { bindListenHandle, type ListenHandle } from '../../../src/supervisor/listen-handle.js'
import { ListenerProcess, type ListenerProcessOptions } from '../../../src/supervisor/listener-process.js'
import { waitFor } from '../../helpers/wait.js'
import { connectAndGreet, greetOnce } from './net-probe.js'
import { route } from './routes.js'

const logger = pino({ level: 'silent' })
const FAKE_CHILD = fileURLToPath(new URL('./fake-child.js', import.meta.url))

const handles: ListenHandle[] = []
const procs: ListenerProcess[] = []
after(async () => {
  await Promise.all(procs.map((p) => p.kill()))
  for (const h of handles) h.close()
})

async function setup(name: string, opts: Partial<ListenerProcessOptions> = {}) {
  const handle = await bindListenHandle({ host: '127.0.0.1', port: 0 })
  handles.push(handle)
  const [listener] = groupListeners([route(name, handle.port)])
  const events = { restarts: 0, exited: [] as string[], stats: 0 }
  const proc = new ListenerProcess({
    listener: listener!,
    handle,
    log: { level: 'info', format: 'json' },
    logger,
    entry: FAKE_CHILD,
    hooks: {
      restarting: () => events.restarts++,
      exited: (id) => events.exited.push(id),
      stats: () => events.stats++,
    },
    ...opts,
  })
  procs.push(proc)
  return { handle, proc, events }
}

describe('bindListenHandle', () => {
  it('reports EADDRINUSE at bind time with the address (libuv would defer it to listen)', async () => {
    const busy = net.createServer().listen(0, '127.0.0.1')
    await new Promise((r) => busy.once('listening', r))
    const { port } = busy.address() as net.AddressInfo
    try {
      await assert.rejects(bindListenHandle({ host: '127.0.0.1', port }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'GW_ERR_LISTEN')
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}: EADDRINUSE`))
        return true
      })
    } finally {
      busy.close()
    }
  })

  it('reports an address this host does not have', async () => {
    await assert.rejects(bindListenHandle({ host: '192.0.2.1', port: 0 }), /192\.0\.2\.1:0: EADDRNOTAVAIL/)
  })

  it('binds without listening: nothing accepts until a child listens', async () => {
    const h = await bindListenHandle({ host: '127.0.0.1', port: 0 })
    handles.push(h)
    assert.ok(h.port > 0)
    await assert.rejects(greetOnce(h.port, 1_000), /ECONNREFUSED/)
  })
})

describe('ListenerProcess', () => {
  it('starts a child that serves on the handle and answers collect', async () => {
    const { handle, proc, events } = await setup('alpha')
    await proc.start()
    assert.equal(proc.state, 'ready')
    assert.equal(await greetOnce(handle.port), `alpha@${proc.pid}`)
    const stats = await proc.collect(1_000)
    assert.deepEqual(stats?.info.map((i) => i.route), ['alpha'])
    assert.equal(events.stats, 1)
  })

  it('kill -9: clients connecting during the gap are served by the restarted child, none refused', async () => {
    const { handle, proc, events } = await setup('bravo')
    await proc.start()
    const firstPid = proc.pid!
    process.kill(firstPid, 'SIGKILL')
    await waitFor(() => proc.state === 'down', { timeoutMs: 2_000, intervalMs: 5, what: 'child seen as down' })
    // Connect while no child exists: the kernel queues these in the supervisor-held socket's backlog.
    const during = await Promise.all([greetOnce(handle.port), greetOnce(handle.port), greetOnce(handle.port)])
    assert.equal(proc.state, 'ready')
    const pid = proc.pid!
    assert.notEqual(pid, firstPid)
    assert.deepEqual(during, [`bravo@${pid}`, `bravo@${pid}`, `bravo@${pid}`])
    assert.equal(events.restarts, 1)
    assert.equal(events.exited.length, 1)
  })

  it('a start failure reported by the child rejects start() with its code and does not restart', async () => {
    const { proc, events } = await setup('fatal-cert')
    await assert.rejects(proc.start(), (err: Error & { code?: string }) => err.code === 'GW_ERR_CERT_LOAD')
    assert.equal(proc.state, 'stopped')
    await waitFor(() => events.exited.length === 1, { timeoutMs: 2_000, what: 'failed child exit' })
    assert.equal(events.restarts, 0)
  })

  it('a child that never gets ready is killed at the ready deadline', async () => {
    const { proc, events } = await setup('mute-child', { readyTimeoutMs: 300 })
    const t0 = Date.now()
    await assert.rejects(proc.start(), /not ready within 300 ms/)
    assert.ok(Date.now() - t0 < 2_000)
    await waitFor(() => events.exited.length === 1, { timeoutMs: 2_000, what: 'mute child killed' })
  })

  it('drain lets an open connection finish, then the child exits and is not restarted', async () => {
    const { handle, proc, events } = await setup('charlie')
    await proc.start()
    const open = await connectAndGreet(handle.port)
    const closed = new Promise((r) => open.socket.once('close', r))
    const drained = proc.drain(5_000)
    await waitFor(() => proc.state === 'draining', { timeoutMs: 1_000, what: 'draining state' })
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(open.socket.destroyed, false, 'open connection survives the start of the drain')
    open.socket.end()
    await closed
    await drained
    assert.equal(proc.state, 'stopped')
    assert.equal(events.restarts, 0)
    assert.ok(events.stats >= 1, 'final stats were reported before exit')
  })

  it('drain cuts connections still open at the timeout', async () => {
    const { handle, proc } = await setup('delta')
    await proc.start()
    const open = await connectAndGreet(handle.port)
    const closed = new Promise((r) => open.socket.once('close', r))
    open.socket.on('error', () => {})
    const t0 = Date.now()
    await proc.drain(300)
    await closed
    assert.ok(Date.now() - t0 < 3_000)
  })
})
