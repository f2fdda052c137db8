/**
 * Reload planning: what must happen to go from the listeners that are running to the listeners the new file
 * asks for. Pure (no I/O), so every case is unit-tested.
 *
 * Listeners are matched by listen key ("host:port"); routes by name. A listener is kept only when its normalized
 * content is identical; any route change on it (added, removed or edited route) replaces the listener's child,
 * because one child serves every route of a listener. Certificate *contents* are not part of the plan: the
 * paths are compared here, the bytes behind them by the supervisor's TLS check (reload-tls, no restart).
 */
import { createHash } from 'node:crypto'
import type { ListenerConfig, RouteConfig } from '../config/types.js'

export interface ListenerChange {
  key: string
  previous: ListenerConfig
  next: ListenerConfig
  /** Route names on this listener that were added, removed or edited (for logs). */
  addedRoutes: string[]
  removedRoutes: string[]
  changedRoutes: string[]
}

export interface ReloadPlan {
  add: ListenerConfig[]
  remove: ListenerConfig[]
  replace: ListenerChange[]
  /** The new config objects of listeners whose content is unchanged. */
  keep: ListenerConfig[]
  /** Route names present before and absent from the whole new config (their metrics series can go). */
  removedRoutes: string[]
}

/**
 * JSON with sorted keys and without undefined members, so two configs that mean the same thing serialize the
 * same whatever the key order the loader produced.
 */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
}

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32)
}

/** Content fingerprint of one route. serverNames order carries no meaning, so it is sorted first. */
export function routeFingerprint(route: RouteConfig): string {
  return sha(canonical({ ...route, serverNames: [...route.serverNames].sort() }))
}

/** Content fingerprint of a listener: its address, greeting mode and every route, independent of route order. */
export function listenerFingerprint(listener: ListenerConfig): string {
  const routes = [...listener.routes].sort((a, b) => (a.name < b.name ? -1 : 1)).map(routeFingerprint)
  return sha(canonical({ key: listener.key, listen: listener.listen, greeting: listener.greeting, routes }))
}

function diffRoutes(previous: ListenerConfig, next: ListenerConfig): Omit<ListenerChange, 'key' | 'previous' | 'next'> {
  const before = new Map(previous.routes.map((r) => [r.name, routeFingerprint(r)]))
  const after = new Map(next.routes.map((r) => [r.name, routeFingerprint(r)]))
  return {
    addedRoutes: [...after.keys()].filter((name) => !before.has(name)),
    removedRoutes: [...before.keys()].filter((name) => !after.has(name)),
    changedRoutes: [...after].filter(([name, fp]) => before.has(name) && before.get(name) !== fp).map(([n]) => n),
  }
}

/** Plans the move from the `running` listeners to the `desired` ones. */
export function planReload(running: readonly ListenerConfig[], desired: readonly ListenerConfig[]): ReloadPlan {
  const old = new Map(running.map((l) => [l.key, l]))
  const plan: ReloadPlan = { add: [], remove: [], replace: [], keep: [], removedRoutes: [] }
  for (const next of desired) {
    const previous = old.get(next.key)
    if (!previous) plan.add.push(next)
    else if (listenerFingerprint(previous) === listenerFingerprint(next)) plan.keep.push(next)
    else plan.replace.push({ key: next.key, previous, next, ...diffRoutes(previous, next) })
  }
  const desiredKeys = new Set(desired.map((l) => l.key))
  plan.remove = running.filter((l) => !desiredKeys.has(l.key))
  const desiredRoutes = new Set(desired.flatMap((l) => l.routes.map((r) => r.name)))
  plan.removedRoutes = running.flatMap((l) => l.routes.map((r) => r.name)).filter((n) => !desiredRoutes.has(n))
  return plan
}

/** True when the plan changes nothing that runs. */
export function isNoop(plan: ReloadPlan): boolean {
  return plan.add.length === 0 && plan.remove.length === 0 && plan.replace.length === 0
}

/** Certificate, key and CA files a listener's child reads (the ones whose contents trigger reload-tls). */
export function tlsFilesByRoute(listener: ListenerConfig): Map<string, string[]> {
  const files = new Map<string, string[]>()
  for (const route of listener.routes) {
    const paths = [route.tls.cert, route.tls.key, route.tls.clientCA, route.backendTls.ca]
    files.set(route.name, [...new Set(paths.filter((p): p is string => typeof p === 'string'))])
  }
  return files
}
