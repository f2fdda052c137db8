/**
 * Rules across routes: unique names, listen addresses, SNI sharing, and the settings refused because they
 * would silently do nothing.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { loadConfigFile } from '../../../src/config/load.js'
import { groupListeners } from '../../../src/config/types.js'
import { q, routeYaml, workspace, type Workspace } from './fixtures.js'

let ws: Workspace
before(async () => {
  ws = await workspace()
})
after(() => ws.cleanup())

/** Routes at 4 lines each (5 with one extra line): route i starts on line 2 + 4*i when there are no extras. */
function routes(...blocks: string[]): string {
  return ['routes:', ...blocks, ''].join('\n')
}
const route = (name: string, listen: string, ...extra: string[]): string => routeYaml(ws.pem, { name, listen, extra })

describe('names and listen addresses', () => {
  test('duplicate route names', async () => {
    const yaml = routes(route('a', '127.0.0.1:3307'), route('a', '127.0.0.1:3308'))
    assert.deepEqual(await ws.problems(yaml), ['6:11 routes[1].name: duplicate route name, also used by routes[0] "a" (line 2)'])
  })

  test('two routes on one listen address without serverNames', async () => {
    const yaml = routes(route('a', '127.0.0.1:3307'), route('b', '127.0.0.1:3307'))
    assert.deepEqual(await ws.problems(yaml), [
      '7:13 routes[1].listen: 127.0.0.1:3307 is also the listen address of routes[0] "a" (line 2); routes may share a listener only when every one of them declares serverNames',
    ])
  })

  test('a bare port and 0.0.0.0 with the same port are the same address', async () => {
    const yaml = routes(route('a', '3307'), route('b', '0.0.0.0:3307'))
    const problems = await ws.problems(yaml)
    assert.equal(problems.length, 1)
    assert.match(problems[0]!, /^7:13 routes\[1\]\.listen: 0\.0\.0\.0:3307 is also the listen address of routes\[0\] "a"/)
  })

  test('a wildcard address overlaps a specific one on the same port', async () => {
    const yaml = routes(route('a', '0.0.0.0:3307'), route('b', '127.0.0.1:3307'), route('c', '[::]:3309'), route('d', '[::1]:3309'))
    assert.deepEqual(await ws.problems(yaml), [
      '7:13 routes[1].listen: 127.0.0.1:3307 overlaps 0.0.0.0:3307 of routes[0] "a" (line 2): a wildcard address takes the port on every interface',
      '15:13 routes[3].listen: [::1]:3309 overlaps [::]:3309 of routes[2] "c" (line 10): a wildcard address takes the port on every interface',
    ])
  })

  test('different hosts on the same port are fine', async () => {
    const config = await loadConfigFile(await ws.write(routes(route('a', '127.0.0.1:3307'), route('b', '127.0.0.2:3307'))))
    assert.equal(groupListeners(config.routes).length, 2)
  })

  test('port out of range and an impossible IPv4 address', async () => {
    const yaml = routes(route('a', '127.0.0.1:70000'), route('b', '10.0.0.256:3307'))
    assert.deepEqual(await ws.problems(yaml), [
      '3:13 routes[0].listen: port 70000 is out of range (1-65535)',
      '7:13 routes[1].listen: "10.0.0.256" is not an IPv4 address',
    ])
  })

  test('the admin endpoint cannot take a route port', async () => {
    const yaml = `admin: { listen: 3307 }\n${routes(route('a', '127.0.0.1:3307'))}`
    assert.deepEqual(await ws.problems(yaml), ['1:18 admin.listen: collides with the listen address of routes[0] "a" (line 3)'])
  })
})

describe('shared listeners (SNI)', () => {
  test('routes that all declare serverNames share a listener; greeting becomes gateway', async () => {
    const yaml = routes(
      route('a', '127.0.0.1:3307', 'serverNames: [A.Example.com, "*.a.example.com"]', 'default: true', 'serverVersion: "8.0.36"'),
      route('b', '127.0.0.1:3307', 'serverNames: [b.example.com, "*.example.com"]')
    )
    const config = await loadConfigFile(await ws.write(yaml))
    const listeners = groupListeners(config.routes)
    assert.equal(listeners.length, 1)
    assert.equal(listeners[0]!.greeting, 'gateway')
    assert.deepEqual(
      config.routes.map((r) => [r.name, r.greeting, r.default, r.serverVersion, r.serverNames]),
      [
        ['a', 'gateway', true, '8.0.36', ['a.example.com', '*.a.example.com']],
        // serverVersion is per listener: set on one route, it applies to every route there.
        ['b', 'gateway', false, '8.0.36', ['b.example.com', '*.example.com']],
      ]
    )
  })

  test('a route without serverNames on a shared listener', async () => {
    const yaml = routes(route('a', '127.0.0.1:3307', 'serverNames: [a.example.com]'), route('b', '127.0.0.1:3307'))
    assert.deepEqual(await ws.problems(yaml), [
      '8:13 routes[1].listen: 127.0.0.1:3307 is also the listen address of routes[0] "a" (line 2); routes may share a listener only when every one of them declares serverNames',
    ])
  })

  test('only the route lacking serverNames is reported, also when it comes first', async () => {
    const yaml = routes(
      route('a', '127.0.0.1:3307'),
      route('b', '127.0.0.1:3307', 'serverNames: [b.example.com]'),
      route('c', '127.0.0.1:3307', 'serverNames: [c.example.com]')
    )
    assert.deepEqual(await ws.problems(yaml), [
      '3:13 routes[0].listen: 127.0.0.1:3307 is also the listen address of routes[1] "b" (line 6); routes may share a listener only when every one of them declares serverNames',
    ])
  })

  test('the same name on two routes (case-insensitive) is ambiguous', async () => {
    const yaml = routes(
      route('a', '127.0.0.1:3307', 'serverNames: [db.example.com, "*.example.com"]'),
      route('b', '127.0.0.1:3307', 'serverNames: [x.example.com, DB.example.com, "*.Example.com"]')
    )
    assert.deepEqual(await ws.problems(yaml), [
      '11:34 routes[1].serverNames[1]: "db.example.com" is also served by routes[0] "a" (line 2) on 127.0.0.1:3307',
      '11:50 routes[1].serverNames[2]: "*.example.com" is also served by routes[0] "a" (line 2) on 127.0.0.1:3307',
    ])
  })

  test('at most one default route per listener', async () => {
    const yaml = routes(
      route('a', '127.0.0.1:3307', 'serverNames: [a.example.com]', 'default: true'),
      route('b', '127.0.0.1:3307', 'serverNames: [b.example.com]', 'default: true')
    )
    assert.deepEqual(await ws.problems(yaml), ['13:14 routes[1].default: routes[0] "a" (line 2) is already the default route of 127.0.0.1:3307'])
  })

  test('greeting backend written on a shared route is refused', async () => {
    const yaml = routes(
      route('a', '127.0.0.1:3307', 'serverNames: [a.example.com]'),
      route('b', '127.0.0.1:3307', 'serverNames: [b.example.com]', 'greeting: backend')
    )
    assert.deepEqual(await ws.problems(yaml), [
      '12:15 routes[1].greeting: must be gateway on a shared listener (127.0.0.1:3307): the route is chosen after the greeting',
    ])
  })

  test('greeting backend from defaults is overridden, not an error', async () => {
    const yaml = `defaults: { greeting: backend }\n${routes(
      route('a', '127.0.0.1:3307', 'serverNames: [a.example.com]'),
      route('b', '127.0.0.1:3307', 'serverNames: [b.example.com]')
    )}`
    const config = await loadConfigFile(await ws.write(yaml))
    assert.deepEqual(config.routes.map((r) => r.greeting), ['gateway', 'gateway'])
  })

  test('tls disabled cannot share a listener', async () => {
    const yaml = routes(
      route('a', '127.0.0.1:3307', 'serverNames: [a.example.com]'),
      route('b', '127.0.0.1:3307', 'serverNames: [b.example.com]').replace('tls: {', 'tls: { mode: disabled,')
    )
    assert.deepEqual(await ws.problems(yaml), [
      '10:18 routes[1].tls.mode: tls.mode disabled cannot be used on a shared listener (127.0.0.1:3307): routes are chosen by TLS SNI',
    ])
  })

  test('serverVersion must agree across a shared listener', async () => {
    const yaml = routes(
      route('a', '127.0.0.1:3307', 'serverNames: [a.example.com]', 'serverVersion: "8.0.36"'),
      route('b', '127.0.0.1:3307', 'serverNames: [b.example.com]', 'serverVersion: "10.11.6-MariaDB"')
    )
    assert.deepEqual(await ws.problems(yaml), [
      '13:20 routes[1].serverVersion: differs from "8.0.36" set by routes[0] "a" (line 2); the routes on 127.0.0.1:3307 share one greeting',
    ])
  })

  test('a single route may use greeting gateway and serverNames', async () => {
    const yaml = routes(route('a', '127.0.0.1:3307', 'greeting: gateway', 'serverNames: [a.example.com]'))
    const config = await loadConfigFile(await ws.write(yaml))
    assert.equal(config.routes[0]!.greeting, 'gateway')
    assert.equal(groupListeners(config.routes)[0]!.greeting, 'gateway')
  })
})

describe('settings that would silently do nothing', () => {
  test('cert and key are required when tls.mode is the default', async () => {
    const yaml = ['routes:', '  - name: a', '    listen: 3307', '    backend: db:3306', ''].join('\n')
    assert.deepEqual(await ws.problems(yaml), [
      '2:5 routes[0].tls.cert: is required when tls.mode is required (the default)',
      '2:5 routes[0].tls.key: is required when tls.mode is required (the default)',
    ])
  })

  test('cert and key are required when defaults make tls preferred', async () => {
    const yaml = ['defaults: { tls: { mode: preferred } }', 'routes:', '  - name: a', '    listen: 3307', '    backend: db:3306', '    tls: { minVersion: TLSv1.3 }', ''].join('\n')
    assert.deepEqual(await ws.problems(yaml), [
      '6:10 routes[0].tls.cert: is required when tls.mode is preferred',
      '6:10 routes[0].tls.key: is required when tls.mode is preferred',
    ])
  })

  test('clientCA with tls disabled', async () => {
    const yaml = routes(route('a', '127.0.0.1:3307').replace(/tls: .*/, `tls: { mode: disabled, clientCA: ${q(ws.pem.ca)} }`))
    assert.deepEqual(await ws.problems(yaml), ['5:38 routes[0].tls.clientCA: has no effect when tls.mode is disabled (no client is authenticated)'])
  })

  test('backendTls.ca on a route that does not verify', async () => {
    const yaml = routes(route('a', '127.0.0.1:3307', `backendTls: { mode: required, ca: ${q(ws.pem.ca)} }`))
    assert.deepEqual(await ws.problems(yaml), [
      '6:39 routes[0].backendTls.ca: has no effect when backendTls.mode is required; use verify-ca or verify-identity',
    ])
  })

  test('backendTls.ca from defaults is simply unused by routes that do not verify', async () => {
    const yaml = `defaults: { backendTls: { ca: ${q(ws.pem.ca)} } }\n${routes(
      route('a', '127.0.0.1:3307'),
      route('b', '127.0.0.1:3308', 'backendTls: { mode: verify-ca }')
    )}`
    const config = await loadConfigFile(await ws.write(yaml))
    assert.deepEqual(config.routes[0]!.backendTls, { mode: 'disabled' })
    assert.deepEqual(config.routes[1]!.backendTls, { mode: 'verify-ca', ca: ws.pem.ca })
  })
})
