import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { groupListeners } from '../../../src/config/types.js'
import { isNoop, listenerFingerprint, planReload, routeFingerprint, tlsFilesByRoute } from '../../../src/supervisor/plan.js'
import { route } from './routes.js'

const keys = (ls: { key: string }[]) => ls.map((l) => l.key).sort()

describe('planReload', () => {
  it('starts everything from nothing', () => {
    const plan = planReload([], groupListeners([route('a', 4001), route('b', 4002)]))
    assert.deepEqual(keys(plan.add), ['127.0.0.1:4001', '127.0.0.1:4002'])
    assert.deepEqual([plan.remove, plan.replace, plan.keep, plan.removedRoutes], [[], [], [], []])
  })

  it('keeps identical listeners, even when built as different objects with other key order', () => {
    const a = route('a', 4001)
    const reordered = Object.fromEntries(Object.entries(route('a', 4001)).reverse()) as typeof a
    const plan = planReload(groupListeners([a]), groupListeners([reordered]))
    assert.equal(plan.keep.length, 1)
    assert.ok(isNoop(plan))
  })

  it('adds, removes, replaces and keeps by listen key', () => {
    const running = groupListeners([route('a', 4001), route('b', 4002), route('c', 4003)])
    const desired = groupListeners([route('a', 4001), route('b', 4002, { maxConnections: 5 }), route('d', 4004)])
    const plan = planReload(running, desired)
    assert.deepEqual(keys(plan.add), ['127.0.0.1:4004'])
    assert.deepEqual(keys(plan.remove), ['127.0.0.1:4003'])
    assert.deepEqual(keys(plan.keep), ['127.0.0.1:4001'])
    assert.equal(plan.replace.length, 1)
    assert.deepEqual(plan.replace[0]!.changedRoutes, ['b'])
    assert.equal(plan.replace[0]!.next.routes[0]!.maxConnections, 5)
    assert.deepEqual(plan.removedRoutes, ['c'])
    assert.ok(!isNoop(plan))
  })

  it('replaces a listener whose route was renamed, and reports the names', () => {
    const plan = planReload(groupListeners([route('a', 4001)]), groupListeners([route('a2', 4001)]))
    assert.equal(plan.replace.length, 1)
    assert.deepEqual(plan.replace[0]!.addedRoutes, ['a2'])
    assert.deepEqual(plan.replace[0]!.removedRoutes, ['a'])
    assert.deepEqual(plan.removedRoutes, ['a'])
  })

  it('moves a route to another port: old listener removed, new one added, route not reported removed', () => {
    const plan = planReload(groupListeners([route('a', 4001)]), groupListeners([route('a', 4009)]))
    assert.deepEqual(keys(plan.remove), ['127.0.0.1:4001'])
    assert.deepEqual(keys(plan.add), ['127.0.0.1:4009'])
    assert.deepEqual(plan.removedRoutes, [])
  })

  it('replaces a shared listener when any one of its routes changes, and only then', () => {
    const sni = (name: string, extra = {}) => route(name, 4001, { serverNames: [`${name}.db.test`], ...extra })
    const running = groupListeners([sni('a'), sni('b')])
    assert.ok(isNoop(planReload(running, groupListeners([sni('b'), sni('a')]))), 'route order on a listener is not a change')
    const changed = planReload(running, groupListeners([sni('a'), sni('b', { maxConnections: 7 })]))
    assert.equal(changed.replace.length, 1)
    assert.deepEqual(changed.replace[0]!.changedRoutes, ['b'])
    const added = planReload(running, groupListeners([sni('a'), sni('b'), sni('c')]))
    assert.deepEqual(added.replace[0]!.addedRoutes, ['c'])
  })

  it('ignores serverNames order and undefined members, but not real content', () => {
    const base = route('a', 4001, { serverNames: ['x.test', '*.y.test'] })
    assert.equal(routeFingerprint(base), routeFingerprint({ ...base, serverNames: ['*.y.test', 'x.test'] }))
    assert.equal(routeFingerprint(base), routeFingerprint({ ...base, serverVersion: undefined }))
    assert.notEqual(routeFingerprint(base), routeFingerprint({ ...base, serverVersion: '8.0.36' }))
    const withCert = route('a', 4001, { tls: { mode: 'required', cert: '/c/a.crt', key: '/c/a.key', minVersion: 'TLSv1.2' } })
    const otherCert = route('a', 4001, { tls: { ...withCert.tls, cert: '/c/a2.crt' } })
    assert.notEqual(routeFingerprint(withCert), routeFingerprint(otherCert), 'a new certificate path is a route change')
    const [l1] = groupListeners([withCert])
    const [l2] = groupListeners([route('a', 4001, { greeting: 'gateway', tls: withCert.tls })])
    assert.notEqual(listenerFingerprint(l1!), listenerFingerprint(l2!))
  })

  it('lists the TLS files a listener reads, per route, without duplicates', () => {
    const [l] = groupListeners([
      route('a', 4001, {
        tls: { mode: 'required', cert: '/c/a.crt', key: '/c/a.key', clientCA: '/c/ca.pem', minVersion: 'TLSv1.2' },
        backendTls: { mode: 'verify-ca', ca: '/c/ca.pem' },
      }),
    ])
    assert.deepEqual(tlsFilesByRoute(l!).get('a'), ['/c/a.crt', '/c/a.key', '/c/ca.pem'])
  })
})
