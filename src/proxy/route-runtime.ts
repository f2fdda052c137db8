/** What a session needs to know about the route it serves: config, live TLS material, stats, logger, load. */
import type { RouteConfig } from '../config/types.js'
import type { Logger } from '../log.js'
import { RouteStats } from '../metrics/route-stats.js'
import type { TlsMaterial } from './tls-material.js'

export class RouteRuntime {
  /** Sessions counted against maxConnections (from acceptance or routing until close). */
  open = 0

  constructor(
    readonly config: RouteConfig,
    /** Absent when tls.mode is disabled. */
    public tls: TlsMaterial | undefined,
    readonly logger: Logger,
    /** Carried over when a route's config changes in place, so its counters never go back. */
    readonly stats: RouteStats = new RouteStats()
  ) {}

  get name(): string {
    return this.config.name
  }
}

/** Matches an SNI name against a route's serverNames: exact names, or "*.suffix" for one or more labels. */
export function matchesServerName(patterns: readonly string[], servername: string): boolean {
  const name = servername.toLowerCase().replace(/\.$/, '')
  for (const pattern of patterns) {
    const p = pattern.toLowerCase()
    if (p.startsWith('*.')) {
      if (name.endsWith(p.slice(1)) && name.length > p.length - 1) return true
    } else if (p === name) return true
  }
  return false
}

/** Exact names win over wildcards, and longer wildcard suffixes over shorter ones. */
export function pickRoute(routes: readonly RouteRuntime[], servername: string): RouteRuntime | undefined {
  const name = servername.toLowerCase().replace(/\.$/, '')
  const exact = routes.find((r) => r.config.serverNames.some((p) => p.toLowerCase() === name))
  if (exact) return exact
  let best: RouteRuntime | undefined
  let bestLength = -1
  for (const route of routes) {
    for (const p of route.config.serverNames) {
      if (p.startsWith('*.') && matchesServerName([p], name) && p.length > bestLength) {
        best = route
        bestLength = p.length
      }
    }
  }
  return best
}
