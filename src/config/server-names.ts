/**
 * How a client's SNI name selects a route on a shared listener. The config cross-checks and the proxy use
 * this one definition, so "ambiguous" in validation means exactly what routing would trip over.
 *
 * - Names compare without regard to case; a trailing dot in the SNI is ignored.
 * - "*.example.com" matches exactly one more label ("a.example.com"; not "example.com", not "a.b.example.com"),
 *   the same rule TLS clients apply to wildcard certificates.
 * - An exact name beats a wildcard (as in nginx and Envoy), so an exact name inside another route's wildcard
 *   is not ambiguous: it carves that host out.
 * - A listener with a single route sends every client to it; serverNames only select among several routes.
 * - A client that sends no SNI gets the listener's `default: true` route; one that sends an unknown name gets
 *   no route (it is refused, never silently sent to the default tenant).
 */
import type { RouteConfig } from './types.js'

/** Lower-case, without a trailing dot: the form stored in RouteConfig.serverNames and compared against. */
export function normalizeServerName(name: string): string {
  const lower = name.toLowerCase()
  return lower.endsWith('.') ? lower.slice(0, -1) : lower
}

/** Whether `pattern` (exact name or "*.suffix", normalized) matches the normalized SNI `name`. */
export function serverNameMatches(pattern: string, name: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === name
  const suffix = pattern.slice(1)
  if (!name.endsWith(suffix)) return false
  const label = name.slice(0, -suffix.length)
  return label.length > 0 && !label.includes('.')
}

/**
 * Picks the route for a client on a listener.
 * @param sni the name from the TLS ClientHello, or undefined when the client sent none (or no TLS at all).
 */
export function selectRoute<R extends Pick<RouteConfig, 'serverNames' | 'default'>>(
  routes: readonly R[],
  sni: string | undefined
): R | undefined {
  if (routes.length === 1) return routes[0]
  if (sni === undefined || sni === '') return routes.find((r) => r.default)
  const name = normalizeServerName(sni)
  const exact = routes.find((r) => r.serverNames.includes(name))
  if (exact) return exact
  return routes.find((r) => r.serverNames.some((p) => p.startsWith('*.') && serverNameMatches(p, name)))
}
