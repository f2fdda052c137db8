/**
 * The rows of GET /routes, built from what the supervisor runs. Kept apart from the supervisor's control flow:
 * it only reads processes' states and their last reported runtime info.
 */
import type { RouteView } from '../admin/view.js'
import type { RouteConfig } from '../config/types.js'
import { listenKey } from '../config/types.js'
import type { ListenerProcess } from './listener-process.js'

export interface RouteViewSource {
  /** Routes of the configuration in effect, in file order. */
  routes: readonly RouteConfig[]
  /** The process serving a listen key, if any. */
  serving(key: string): ListenerProcess | undefined
  /** Replaced or removed processes still draining. */
  retiring: Iterable<ListenerProcess>
}

export function buildRouteViews(src: RouteViewSource): RouteView[] {
  const retiring = [...src.retiring]
  const views: RouteView[] = []
  const shown = new Set<string>()
  const open = new Map<string, number>()
  const serving = src.routes.map((r) => src.serving(listenKey(r.listen)))
  for (const p of new Set([...serving, ...retiring])) {
    // Open connections of a route count on every process that has some: during a replacement the old process
    // still carries sessions the new one never saw.
    for (const i of p?.lastInfo ?? []) open.set(i.route, (open.get(i.route) ?? 0) + i.open)
  }
  src.routes.forEach((route, index) => {
    const proc = serving[index]
    const info = proc?.lastInfo.find((i) => i.route === route.name)
    views.push({
      name: route.name,
      listen: listenKey(route.listen),
      backend: listenKey(route.backend),
      // No process: the listener could not bind or start (it is retried); that route is down.
      state: proc ? proc.state : 'down',
      ...(proc?.pid !== undefined && proc.state !== 'down' ? { pid: proc.pid } : {}),
      open: open.get(route.name) ?? 0,
      ...(route.serverNames.length > 0 ? { serverNames: route.serverNames } : {}),
      ...(info?.cert ? { cert: { subject: info.cert.subject, notAfter: info.cert.notAfter } } : {}),
    })
    shown.add(route.name)
  })
  // Routes removed by a reload stay visible while their old process drains.
  for (const proc of retiring) {
    for (const route of proc.listener.routes) {
      if (shown.has(route.name)) continue
      shown.add(route.name)
      views.push({
        name: route.name,
        listen: listenKey(route.listen),
        backend: listenKey(route.backend),
        state: 'draining',
        ...(proc.pid !== undefined ? { pid: proc.pid } : {}),
        open: open.get(route.name) ?? 0,
      })
    }
  }
  return views
}
