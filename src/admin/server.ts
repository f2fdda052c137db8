/**
 * The admin HTTP server: health and readiness probes, Prometheus metrics and a route listing.
 *
 * It has no authentication, so examples bind it to loopback. It only reads: the supervisor's state through
 * SupervisorView and the counters through MetricsAggregator.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { GatewayError } from '../errors.js'
import type { HostPort } from '../config/types.js'
import type { Logger } from '../log.js'
import type { MetricsAggregator } from '../metrics/aggregator.js'
import type { SupervisorView } from './view.js'

/**
 * Upper bound on the stats refresh before a scrape. The view bounds its own IPC round trip (~1 s); this is the
 * backstop so a scrape always gets an answer before Prometheus' default 10 s scrape timeout.
 */
const REFRESH_TIMEOUT_MS = 2_000
/** How long close() lets in-flight requests finish before cutting their connections. */
const CLOSE_GRACE_MS = 1_000
/** Probes and scrapes are tiny; anything slower than this is a stuck or hostile client. */
const REQUEST_TIMEOUT_MS = 10_000
const HEADERS_TIMEOUT_MS = 5_000

export interface AdminServerOptions {
  listen: HostPort
  view: SupervisorView
  metrics: MetricsAggregator
  logger: Logger
  /** Bound on the stats refresh before a scrape; defaults to REFRESH_TIMEOUT_MS. */
  refreshTimeoutMs?: number
}

export interface AdminServer {
  /** The bound address (the real port when listen.port was 0). */
  address: HostPort
  /** Stops accepting, lets in-flight requests finish for up to 1 s, then closes every connection. */
  close(): Promise<void>
}

type Handler = (res: http.ServerResponse) => Promise<void> | void

/** Starts the admin server; rejects with GW_ERR_LISTEN if the address cannot be bound. */
export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { view, metrics } = opts
  const log = opts.logger.child({ component: 'admin' })
  const refresh = coalescedRefresh(view, opts.refreshTimeoutMs ?? REFRESH_TIMEOUT_MS, log)

  // A Map, not an object literal, so a request for "/__proto__" or "constructor" finds nothing.
  const handlers = new Map<string, Handler>([
    [
      '/healthz',
      (res) => {
        if (view.healthy()) send(res, 200, 'ok')
        else send(res, 503, 'not healthy')
      },
    ],
    [
      '/readyz',
      (res) => {
        if (view.ready()) send(res, 200, 'ready')
        else send(res, 503, notReadyReason(view))
      },
    ],
    [
      '/metrics',
      async (res) => {
        await refresh()
        const body = await metrics.metrics()
        send(res, 200, body, metrics.registry.contentType)
      },
    ],
    [
      '/routes',
      async (res) => {
        // Open connections and certificates come from the children's reports: ask for fresh ones, as /metrics does.
        await refresh()
        send(res, 200, `${JSON.stringify(view.routes(), null, 2)}\n`, 'application/json; charset=utf-8')
      },
    ],
  ])

  const server = http.createServer(
    { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS },
    (req, res) => {
      const handler = handlers.get(pathOf(req.url))
      if (!handler) return send(res, 404, 'not found')
      // HEAD is answered like GET (node strips the body), so load balancers that probe with HEAD work too.
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD')
        return send(res, 405, 'method not allowed')
      }
      Promise.resolve()
        .then(() => handler(res))
        .catch((err: unknown) => {
          log.error({ err, path: pathOf(req.url) }, 'admin request failed')
          if (!res.headersSent) send(res, 500, 'internal error')
          else res.destroy()
        })
    }
  )

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(
        new GatewayError('GW_ERR_LISTEN', `admin server could not listen on ${opts.listen.host}:${opts.listen.port}`, {
          cause: err,
        })
      )
    }
    server.once('error', onError)
    server.listen({ host: opts.listen.host, port: opts.listen.port }, () => {
      server.off('error', onError)
      resolve()
    })
  })
  // After listening, errors are per-connection (node reports those on the socket) or fatal to nothing we serve.
  server.on('error', (err) => log.error({ err }, 'admin server error'))

  const bound = server.address() as AddressInfo
  const address = { host: bound.address, port: bound.port }
  log.info({ address }, 'admin server listening')

  let closing: Promise<void> | undefined
  return {
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS)
        server.close(() => {
          clearTimeout(force)
          resolve()
        })
        // Keep-alive connections with no request in flight would otherwise hold close() open until they time out.
        server.closeIdleConnections()
      })
      return closing
    },
  }
}

function send(res: http.ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' })
  res.end(body)
}

function pathOf(url = '/'): string {
  // Only the path matters; probes sometimes add query strings (cache busting).
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** Names the routes that keep the gateway from being ready, so a failing probe says why. */
function notReadyReason(view: SupervisorView): string {
  // A load balancer's probe log should say why the gateway is leaving the pool, not only that it is.
  if (view.shuttingDown()) return 'not ready: shutting down'
  const blocking = view.routes().filter((r) => r.state !== 'ready')
  if (blocking.length === 0) return 'not ready'
  return `not ready: ${blocking.map((r) => `${r.name} ${r.state}`).join(', ')}`
}

/**
 * Returns a function that refreshes child stats at most once at a time: concurrent scrapes share one IPC round
 * trip instead of each asking every child. A failed or slow refresh is logged and the scrape is served from the
 * last snapshots, which are still correct cumulative values, only older.
 */
function coalescedRefresh(view: SupervisorView, timeoutMs: number, log: Logger): () => Promise<void> {
  let inFlight: Promise<void> | undefined
  return () => {
    inFlight ??= boundedRefresh(view, timeoutMs, log).finally(() => {
      inFlight = undefined
    })
    return inFlight
  }
}

async function boundedRefresh(view: SupervisorView, timeoutMs: number, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs)
  })
  try {
    const result = await Promise.race([Promise.resolve().then(() => view.refreshStats()), timeout])
    if (result === 'timeout') {
      log.warn({ timeoutMs }, 'stats refresh timed out; serving last snapshots')
    }
  } catch (err) {
    log.warn({ err }, 'stats refresh failed; serving last snapshots')
  } finally {
    clearTimeout(timer)
  }
}
