import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { pino } from 'pino'
import { startAdminServer, type AdminServer } from '../../../src/admin/server.js'
import type { RouteView, SupervisorView } from '../../../src/admin/view.js'
import { MetricsAggregator } from '../../../src/metrics/aggregator.js'
import { RouteStats } from '../../../src/metrics/route-stats.js'
import { parseSamples, sample } from '../../helpers/prom-text.js'

const logger = pino({ level: 'silent' })

const ROUTES: RouteView[] = [
  {
    name: 'tenant-a',
    listen: '0.0.0.0:3307',
    backend: '10.0.0.5:3306',
    state: 'ready',
    pid: 4242,
    open: 2,
    cert: { subject: 'CN=tenant-a.db.example.com', notAfter: '2027-01-01T00:00:00.000Z' },
  },
  { name: 'tenant-b', listen: '0.0.0.0:3308', backend: '10.0.0.6:3306', state: 'starting', open: 0 },
]

/** A SupervisorView test double whose answers each test sets. */
class FakeView implements SupervisorView {
  isHealthy = true
  isReady = true
  isShuttingDown = false
  routeList: RouteView[] = ROUTES
  refreshes = 0
  /** When set, routes() throws it (a supervisor bug must not take the admin server down). */
  routesError: Error | undefined
  /** What refreshStats does; by default it reports one fresh child snapshot, as the supervisor would. */
  onRefresh: () => Promise<void>

  constructor(metrics: MetricsAggregator) {
    const stats = new RouteStats()
    this.onRefresh = async () => {
      stats.accepted()
      metrics.report('child-1', { 'tenant-a': stats.snapshot() })
    }
  }
  healthy(): boolean {
    return this.isHealthy
  }
  ready(): boolean {
    return this.isReady
  }
  shuttingDown(): boolean {
    return this.isShuttingDown
  }
  routes(): RouteView[] {
    if (this.routesError) throw this.routesError
    return this.routeList
  }
  refreshStats(): Promise<void> {
    this.refreshes++
    return this.onRefresh()
  }
}

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** One request on a fresh connection (agent: false), so no keep-alive socket outlives the test. */
function request(server: AdminServer, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: server.address.host, port: server.address.port, path, method, agent: false, timeout: 5_000 },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
      }
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

describe('admin server', () => {
  let metrics: MetricsAggregator
  let view: FakeView
  let server: AdminServer

  before(async () => {
    metrics = new MetricsAggregator({ processMetrics: false })
    view = new FakeView(metrics)
    server = await startAdminServer({
      listen: { host: '127.0.0.1', port: 0 },
      view,
      metrics,
      logger,
      refreshTimeoutMs: 200,
    })
  })
  after(() => server.close())

  it('binds the requested host on an ephemeral port', () => {
    assert.equal(server.address.host, '127.0.0.1')
    assert.ok(server.address.port > 0)
  })

  it('GET /healthz is 200 ok while healthy, 503 otherwise', async () => {
    let res = await request(server, '/healthz')
    assert.equal(res.status, 200)
    assert.equal(res.body, 'ok')
    view.isHealthy = false
    try {
      res = await request(server, '/healthz')
      assert.equal(res.status, 503)
    } finally {
      view.isHealthy = true
    }
  })

  it('GET /readyz follows view.ready() and names what is not ready', async () => {
    let res = await request(server, '/readyz')
    assert.equal(res.status, 200)
    assert.equal(res.body, 'ready')
    view.isReady = false
    try {
      res = await request(server, '/readyz')
      assert.equal(res.status, 503)
      assert.match(res.headers['content-type']!, /^text\/plain/)
      assert.equal(res.body, 'not ready: tenant-b starting')
    } finally {
      view.isReady = true
    }
  })

  it('GET /readyz is 503 during a drain even when every route still reads ready, and says why', async () => {
    view.isReady = false
    view.isShuttingDown = true
    view.routeList = ROUTES.filter((r) => r.state === 'ready')
    try {
      const res = await request(server, '/readyz')
      assert.equal(res.status, 503)
      assert.equal(res.body, 'not ready: shutting down')
    } finally {
      view.isShuttingDown = false
      view.isReady = true
      view.routeList = ROUTES
    }
  })

  it('GET /routes returns the view as JSON', async () => {
    const res = await request(server, '/routes')
    assert.equal(res.status, 200)
    assert.match(res.headers['content-type']!, /^application\/json/)
    assert.deepEqual(JSON.parse(res.body), ROUTES)
  })

  it('GET /metrics refreshes the children first and serves prom-client text', async () => {
    const refreshesBefore = view.refreshes
    const first = await request(server, '/metrics')
    const second = await request(server, '/metrics')
    assert.equal(view.refreshes, refreshesBefore + 2)
    assert.equal(first.status, 200)
    assert.equal(first.headers['content-type'], metrics.registry.contentType)
    // Each refresh reported one more accepted connection, so each scrape saw its own refresh.
    const a = sample(parseSamples(first.body), 'mysqlgw_connections_accepted_total', { route: 'tenant-a' })
    const b = sample(parseSamples(second.body), 'mysqlgw_connections_accepted_total', { route: 'tenant-a' })
    assert.equal(b, a + 1)
  })

  it('GET /metrics shares one refresh between concurrent scrapes', async () => {
    const saved = view.onRefresh
    view.onRefresh = () => new Promise((resolve) => setTimeout(resolve, 50))
    const refreshesBefore = view.refreshes
    try {
      const replies = await Promise.all([request(server, '/metrics'), request(server, '/metrics')])
      assert.deepEqual(
        replies.map((r) => r.status),
        [200, 200]
      )
      assert.equal(view.refreshes, refreshesBefore + 1)
    } finally {
      view.onRefresh = saved
    }
  })

  it('GET /metrics answers from the last snapshots when the refresh hangs or fails', async () => {
    const saved = view.onRefresh
    try {
      view.onRefresh = () => new Promise(() => {})
      const started = Date.now()
      let res = await request(server, '/metrics')
      assert.equal(res.status, 200)
      assert.ok(Date.now() - started < 2_000, 'bounded by refreshTimeoutMs')
      assert.ok(sample(parseSamples(res.body), 'mysqlgw_connections_accepted_total', { route: 'tenant-a' }) >= 1)

      view.onRefresh = () => Promise.reject(new Error('child gone'))
      res = await request(server, '/metrics')
      assert.equal(res.status, 200)
    } finally {
      view.onRefresh = saved
    }
  })

  it('answers HEAD like GET, without a body', async () => {
    const res = await request(server, '/healthz', 'HEAD')
    assert.equal(res.status, 200)
    assert.equal(res.body, '')
  })

  it('404 for unknown paths, including prototype names', async () => {
    for (const path of ['/', '/nope', '/healthz/extra', '/__proto__', '/constructor']) {
      assert.equal((await request(server, path)).status, 404, path)
    }
    // The query string is ignored, the path still matches.
    assert.equal((await request(server, '/healthz?probe=1')).status, 200)
  })

  it('405 with an Allow header for other methods', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await request(server, '/metrics', method)
      assert.equal(res.status, 405, method)
      assert.equal(res.headers.allow, 'GET, HEAD')
    }
  })

  it('500 when the view throws, and keeps serving', async () => {
    view.routesError = new Error('boom')
    try {
      assert.equal((await request(server, '/routes')).status, 500)
    } finally {
      view.routesError = undefined
    }
    assert.equal((await request(server, '/routes')).status, 200)
  })
})

describe('admin server lifecycle', () => {
  it('rejects with GW_ERR_LISTEN when the address is taken', async () => {
    const metrics = new MetricsAggregator({ processMetrics: false })
    const view = new FakeView(metrics)
    const first = await startAdminServer({ listen: { host: '127.0.0.1', port: 0 }, view, metrics, logger })
    try {
      await assert.rejects(
        startAdminServer({ listen: { host: '127.0.0.1', port: first.address.port }, view, metrics, logger }),
        (err: Error & { code?: string; cause?: { code?: string } }) =>
          err.code === 'GW_ERR_LISTEN' && err.cause?.code === 'EADDRINUSE'
      )
    } finally {
      await first.close()
    }
  })

  it('close() returns promptly although a client holds a keep-alive connection', async () => {
    const metrics = new MetricsAggregator({ processMetrics: false })
    const server = await startAdminServer({
      listen: { host: '127.0.0.1', port: 0 },
      view: new FakeView(metrics),
      metrics,
      logger,
    })
    const agent = new http.Agent({ keepAlive: true })
    try {
      await new Promise<void>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: server.address.port, path: '/healthz', agent }, (res) => {
            res.resume()
            res.on('end', resolve)
          })
          .on('error', reject)
      })
      const started = Date.now()
      await server.close()
      assert.ok(Date.now() - started < 1_500, `close took ${Date.now() - started} ms`)
      // Calling it again is harmless (the supervisor may close on both shutdown paths).
      await server.close()
    } finally {
      agent.destroy()
    }
  })
})
