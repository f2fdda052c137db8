/**
 * Server names (SNI) as stored in RouteConfig.serverNames. Matching a client's SNI against them happens in the
 * proxy (src/proxy/route-runtime.ts `pickRoute`): an exact name beats a wildcard, "*.example.com" matches any
 * name below example.com (the longest matching suffix wins), and a client without SNI gets the listener's
 * `default: true` route. Under those rules the only ambiguous set is the same name on two routes of one
 * listener, which is what the config cross-checks reject; comparing normalized forms makes that check
 * case-insensitive, like DNS.
 */

/** Lower-case, without a trailing dot. */
export function normalizeServerName(name: string): string {
  const lower = name.toLowerCase()
  return lower.endsWith('.') ? lower.slice(0, -1) : lower
}
