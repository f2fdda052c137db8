/**
 * Supervisor reload semantics with fake children (no TLS, no database): add, remove, replace without a refused
 * connection, rejected reloads keep everything, a busy port fails only its own route.
 */
import { afterEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import type { GatewayConfig } from '../../../src/config/types.js'
import { ConfigError } from '../../../src/errors.js'
import { MetricsAggregator } from '../../../src/metrics/aggregator.js'
import { Supervisor } from '../../../src/supervisor/supervisor.js'
import { freePort } from '../../helpers/cli.js'
import { waitFor } from '../../helpers/wait.js'
import { connectAndGreet, greetLoop, greetOnce, isRefused } from './net-probe.js'
import { gatewayConfig, route } from './routes.js'

const FAKE_CHILD = fileURLToPath(new URL('./fake-child.js', import.meta.url))

let current: Supervisor | undefined
afterEach(async () => {
  await current?.kill()
  current = undefined
})

function makeSupervisor() {
  let next: GatewayConfig | ConfigError = gatewayConfig([])
  const metrics = new MetricsAggregator({ processMetrics: false })
  const sup = new Supervisor({
    logger: pino({ level: 'silent' }),
    metrics,
    childEntry: FAKE_CHILD,
    readyTimeoutMs: 5_000,
    loadConfig: async () => {
      if (next instanceof ConfigError) throw next
      return next
    },
  })
  current = sup
  return {
    sup,
    metrics,
    /** What the next reload will "read from the file". */
    setFile(cfg: GatewayConfig | ConfigError) {
      next = cfg
    },
  }
}

describe('Supervisor', () => {
  it('starts what it can: a busy port fails only its own route, and start reports the counts', async () => {
    const busy = net.createServer().listen(0, '127.0.0.1')
    await new Promise((r) => busy.once('listening', r))
    const busyPort = (busy.address() as net.AddressInfo).port
    try {
      const { sup } = makeSupervisor()
      const okPort = await freePort()
      const result = await sup.start(gatewayConfig([route('ok', okPort), route('blocked', busyPort)]))
      assert.deepEqual(result, { started: 1, failed: 1 })
      assert.match(await greetOnce(okPort), /^ok@/)
      const views = Object.fromEntries(sup.routes().map((r) => [r.name, r.state]))
      assert.deepEqual(views, { ok: 'ready', blocked: 'down' })
      assert.equal(sup.ready(), false)
    } finally {
      busy.close()
    }
  })

  it('reload adds, replaces and removes listeners; unchanged ones keep their process', async () => {
    const { sup, setFile, metrics } = makeSupervisor()
    const [pa, pb, pc] = [await freePort(), await freePort(), await freePort()]
    await sup.start(gatewayConfig([route('a', pa), route('b', pb)]))
    const pidA = sup.routes().find((r) => r.name === 'a')!.pid
    const pidB = sup.routes().find((r) => r.name === 'b')!.pid

    setFile(gatewayConfig([route('a', pa), route('b', pb, { maxConnections: 7 }), route('c', pc)]))
    assert.equal(await sup.reload('test'), 'applied')
    const after = Object.fromEntries(sup.routes().map((r) => [r.name, r]))
    assert.equal(after.a!.pid, pidA, 'unchanged route keeps its child')
    assert.notEqual(after.b!.pid, pidB, 'changed route got a new child')
    // The replaced child of b drains on the same socket for a moment, so poll until the new one answers.
    await waitFor(async () => (await greetOnce(pb).catch(() => '')) === `b@${after.b!.pid}`, {
      timeoutMs: 3_000,
      what: 'new child of b answering',
    })
    assert.equal(await greetOnce(pc), `c@${after.c!.pid}`)
    assert.ok(sup.ready())

    setFile(gatewayConfig([route('a', pa)]))
    await sup.reload('test')
    await waitFor(() => isRefused(pb), { timeoutMs: 3_000, what: 'removed route b refusing' })
    await waitFor(() => isRefused(pc), { timeoutMs: 3_000, what: 'removed route c refusing' })
    assert.equal(await greetOnce(pa), `a@${pidA}`)
    await waitFor(() => sup.routes().length === 1, { timeoutMs: 3_000, what: 'drained routes leave the view' })
    assert.match(await metrics.metrics(), /mysqlgw_config_reloads_total\{result="applied"\} 2/)
  })

  it('replacing a listener refuses no connection and lets the old connection finish on the old child', async () => {
    const { sup, setFile } = makeSupervisor()
    const port = await freePort()
    await sup.start(gatewayConfig([route('r', port)]))
    const oldPid = sup.routes()[0]!.pid
    const held = await connectAndGreet(port)
    const loop = greetLoop(port)
    await waitFor(() => loop.count >= 5, { timeoutMs: 5_000, what: 'traffic before the change' })
    setFile(gatewayConfig([route('r', port, { maxConnections: 1 })]))
    await sup.reload('test')
    const newPid = sup.routes()[0]!.pid
    await waitFor(() => loop.seen.has(`r@${newPid}`) && loop.count >= 20, { timeoutMs: 5_000, what: 'new child serving' })
    await loop.stop()
    assert.deepEqual(loop.failures, [])
    assert.equal(held.line, `r@${oldPid}`)
    assert.equal(held.socket.destroyed, false, 'connection on the draining child is still open')
    assert.equal(sup.routes()[0]!.state, 'ready')
    held.socket.end()
  })

  it('a rejected reload keeps every route exactly as it was and is counted', async () => {
    const { sup, setFile, metrics } = makeSupervisor()
    const port = await freePort()
    await sup.start(gatewayConfig([route('a', port)]))
    const pid = sup.routes()[0]!.pid
    setFile(new ConfigError('GW_ERR_CONFIG_INVALID', ['/x/gateway.yaml:3:5 routes.0.listen: bad address']))
    assert.equal(await sup.reload('test'), 'rejected')
    assert.equal(sup.routes()[0]!.pid, pid)
    assert.equal(await greetOnce(port), `a@${pid}`)
    assert.match(await metrics.metrics(), /mysqlgw_config_reloads_total\{result="rejected"\} 1/)
  })

  it('a replacement that fails to start leaves the old child serving', async () => {
    const { sup, setFile } = makeSupervisor()
    const port = await freePort()
    await sup.start(gatewayConfig([route('a', port)]))
    const pid = sup.routes()[0]!.pid
    // Same listen address, but the route now fails in its child (the fake child's "fatal-*" names).
    setFile(gatewayConfig([route('fatal-a', port)]))
    assert.equal(await sup.reload('test'), 'applied')
    assert.equal(await greetOnce(port), `a@${pid}`)
  })

  it('shutdown: readiness false at once, open connections drain, ports refuse', async () => {
    const { sup } = makeSupervisor()
    const port = await freePort()
    await sup.start(gatewayConfig([route('a', port, { drainTimeoutMs: 3_000 })]))
    const held = await connectAndGreet(port)
    const stopped = sup.shutdown()
    assert.equal(sup.ready(), false)
    await waitFor(() => isRefused(port), { timeoutMs: 2_000, what: 'port refusing during drain' })
    assert.equal(held.socket.destroyed, false)
    held.socket.end()
    await stopped
  })

  it('shutdown with a delay: not ready at once, new clients still served during the delay, refused after it', async () => {
    const { sup } = makeSupervisor()
    const port = await freePort()
    await sup.start(gatewayConfig([route('a', port, { drainTimeoutMs: 3_000 })]))
    const pid = sup.routes()[0]!.pid
    const held = await connectAndGreet(port)
    const delayMs = 1_500
    const t0 = Date.now()
    const stopped = sup.shutdown({ delayMs })
    assert.equal(sup.ready(), false, 'not ready from the first moment')
    // New connections, not only the held one, are accepted and served by the same child during the delay.
    assert.equal(await greetOnce(port), `a@${pid}`)
    await new Promise((r) => setTimeout(r, 500))
    assert.equal(await greetOnce(port), `a@${pid}`)
    assert.equal(sup.ready(), false)
    assert.ok(Date.now() - t0 < delayMs, 'the probes above ran inside the delay')
    await waitFor(() => isRefused(port), { timeoutMs: delayMs + 3_000, what: 'port refusing once the delay is over' })
    assert.ok(Date.now() - t0 >= delayMs, `refused only after the delay (${Date.now() - t0} ms)`)
    assert.equal(held.socket.destroyed, false, 'the open connection drains, it is not cut')
    held.socket.end()
    await stopped
  })

  it('kill() during the shutdown delay ends it at once, without a drain', async () => {
    const { sup } = makeSupervisor()
    const port = await freePort()
    await sup.start(gatewayConfig([route('a', port, { drainTimeoutMs: 30_000 })]))
    const held = await connectAndGreet(port)
    held.socket.on('error', () => {})
    let settled = false
    const stopped = sup.shutdown({ delayMs: 60_000 }).then(() => (settled = true))
    assert.equal(await greetOnce(port), held.line, 'still accepting inside the delay')
    const t0 = Date.now()
    await sup.kill()
    await waitFor(() => settled, { timeoutMs: 2_000, what: 'shutdown() to return after kill()' })
    assert.ok(Date.now() - t0 < 2_000)
    assert.equal(sup.routes()[0]!.state, 'stopped', 'killed, not draining')
    await waitFor(() => isRefused(port), { timeoutMs: 2_000, what: 'port refusing after kill' })
    held.socket.destroy()
    await stopped
  })
})
