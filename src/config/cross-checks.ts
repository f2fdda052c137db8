/**
 * Rules that span several routes, which a JSON Schema cannot express: unique names, one owner per listen
 * address unless the routes share it by SNI, unambiguous server names, and the admin endpoint's port.
 */
import { addressesOverlap } from './addresses.js'
import type { RouteDraft } from './normalize.js'
import type { KeyPath, Problems } from './positions.js'
import { listenKey, type AdminConfig } from './types.js'

/** `routes[0] "tenant-a" (line 7)`: enough for the operator to find the other half of a conflict. */
function describe(draft: { index: number; name: string }, problems: Problems): string {
  const { line } = problems.source.location(['routes', draft.index])
  return `routes[${draft.index}] "${draft.name}" (line ${line})`
}

/** Route names key logs, metrics and reload diffs, so they must be unique. Runs on raw data. */
export function checkRouteNames(routes: readonly unknown[], problems: Problems): void {
  const first = new Map<string, number>()
  routes.forEach((route, index) => {
    const name = route && typeof route === 'object' ? (route as Record<string, unknown>)['name'] : undefined
    if (typeof name !== 'string') return
    const earlier = first.get(name)
    if (earlier === undefined) first.set(name, index)
    else {
      const other = describe({ index: earlier, name }, problems)
      problems.add(['routes', index, 'name'], `duplicate route name, also used by ${other}`)
    }
  })
}

/**
 * Groups routes by listen address and enforces the sharing rules. Routes on a shared listener are adjusted
 * in place: greeting becomes 'gateway' and serverVersion is made the same on all of them.
 */
export function checkListeners(
  drafts: readonly RouteDraft[],
  admin: AdminConfig | undefined,
  problems: Problems
): void {
  const groups = new Map<string, RouteDraft[]>()
  for (const draft of drafts) {
    const key = listenKey(draft.route.listen)
    const group = groups.get(key)
    if (group) group.push(draft)
    else groups.set(key, [draft])
  }
  for (const [key, group] of groups) if (group.length > 1) checkSharedListener(key, group, problems)
  checkOverlaps([...groups.values()].map((g) => g[0]!), problems)
  if (admin) {
    for (const group of groups.values()) {
      const draft = group[0]!
      if (addressesOverlap(admin.listen, draft.route.listen)) {
        const other = describe({ index: draft.index, name: draft.route.name }, problems)
        problems.add(['admin', 'listen'], `collides with the listen address of ${other}`)
      }
    }
  }
}

function checkSharedListener(key: string, group: readonly RouteDraft[], problems: Problems): void {
  const name = (d: RouteDraft): string => describe({ index: d.index, name: d.route.name }, problems)
  const first = group[0]!
  // Without SNI names there is no way to tell which route a client wants: refuse instead of guessing.
  const unnamed = group.filter((d) => d.route.serverNames.length === 0)
  if (unnamed.length > 0) {
    // When none has names this is a duplicated address: report the later ones. Otherwise report exactly the
    // routes that lack names, wherever they are in the file, not their well-formed neighbours.
    const culprits = unnamed.length === group.length ? group.slice(1) : unnamed
    for (const d of culprits) {
      const other = d === first ? group[1]! : first
      problems.add(
        ['routes', d.index, 'listen'],
        `${key} is also the listen address of ${name(other)}; ` +
          'routes may share a listener only when every one of them declares serverNames'
      )
    }
    return
  }

  const owner = new Map<string, RouteDraft>()
  let defaultRoute: RouteDraft | undefined
  let version: { draft: RouteDraft; value: string } | undefined
  for (const d of group) {
    d.route.serverNames.forEach((serverName, i) => {
      const earlier = owner.get(serverName)
      if (!earlier) owner.set(serverName, d)
      else if (earlier !== d) {
        const why = `"${serverName}" is also served by ${name(earlier)} on ${key}`
        problems.add(['routes', d.index, 'serverNames', i], why)
      }
    })
    if (d.route.default) {
      if (!defaultRoute) defaultRoute = d
      else problems.add(['routes', d.index, 'default'], `${name(defaultRoute)} is already the default route of ${key}`)
    }
    // The client learns its route only after TLS, so every route on the listener must offer TLS; a
    // plaintext client (mode preferred) can still reach the default route.
    if (d.route.tls.mode === 'disabled') {
      const at: KeyPath = d.origin('tls', 'mode') ?? ['routes', d.index, 'listen']
      problems.add(at, `tls.mode disabled cannot be used on a shared listener (${key}): routes are chosen by TLS SNI`)
    }
    // One greeting is sent before the route is known, so it cannot come from one of the backends.
    if (d.origin('greeting')?.[0] === 'routes' && d.route.greeting === 'backend') {
      const why = `must be gateway on a shared listener (${key}): the route is chosen after the greeting`
      problems.add(['routes', d.index, 'greeting'], why)
    }
    d.route.greeting = 'gateway'
    const v = d.route.serverVersion
    if (v === undefined) continue
    if (!version) version = { draft: d, value: v }
    else if (version.value !== v) {
      const other = name(version.draft)
      const why = `differs from "${version.value}" set by ${other}; the routes on ${key} share one greeting`
      problems.add(['routes', d.index, 'serverVersion'], why)
    }
  }
  if (version) for (const d of group) d.route.serverVersion = version.value
}

/** Different spellings of the same socket ("0.0.0.0:3307" and "127.0.0.1:3307") would fail at bind time. */
function checkOverlaps(listeners: readonly RouteDraft[], problems: Problems): void {
  for (let i = 0; i < listeners.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = listeners[j]!
      const b = listeners[i]!
      if (!addressesOverlap(a.route.listen, b.route.listen)) continue
      const other = describe({ index: a.index, name: a.route.name }, problems)
      problems.add(
        ['routes', b.index, 'listen'],
        `${listenKey(b.route.listen)} overlaps ${listenKey(a.route.listen)} of ${other}: ` +
          'a wildcard address takes the port on every interface'
      )
    }
  }
}
