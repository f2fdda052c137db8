/**
 * The shape other modules consume: defaults merged object by object, milliseconds, parsed addresses,
 * absolute paths, deep-frozen plain JSON, and the list of files to watch.
 */
import assert from 'node:assert/strict'
import { mkdir, symlink } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { loadConfigFile, watchedFiles } from '../../../src/config/load.js'
import type { RouteConfig } from '../../../src/config/types.js'
import { q, workspace, type Workspace } from './fixtures.js'

let ws: Workspace
before(async () => {
  ws = await workspace()
})
after(() => ws.cleanup())

describe('defaults', () => {
  test('a route without settings gets every built-in default', async () => {
    const yaml = ['routes:', '  - name: a', '    listen: 3307', '    backend: db.internal:3306', `    tls: { cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)} }`, ''].join('\n')
    const config = await loadConfigFile(await ws.write(yaml))
    const expected: RouteConfig = {
      name: 'a',
      listen: { host: '0.0.0.0', port: 3307 },
      backend: { host: 'db.internal', port: 3306 },
      tls: { mode: 'required', minVersion: 'TLSv1.2', cert: ws.pem.cert, key: ws.pem.key },
      backendTls: { mode: 'disabled' },
      timeouts: { connectMs: 5000, handshakeMs: 8000, idleMs: 0 },
      maxConnections: 1000,
      maxHandshakeBytes: 1048576,
      drainTimeoutMs: 30000,
      tcpKeepAlive: true,
      serverNames: [],
      default: false,
      greeting: 'backend',
    }
    assert.deepEqual(config.routes[0], expected)
    assert.deepEqual(config.log, { level: 'info', format: 'json' })
    assert.equal(config.admin, undefined)
  })

  test('defaults merge one mapping at a time; the route wins key by key', async () => {
    const yaml = [
      'log: { level: debug, format: pretty }',
      'admin: { listen: 9090 }',
      'defaults:',
      '  tls: { mode: required, minVersion: TLSv1.3, ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256" }',
      `  backendTls: { mode: verify-ca, ca: ${q(ws.pem.ca)} }`,
      '  timeouts: { connect: 2s, handshake: 1m30s, idle: 8h }',
      '  maxConnections: 50',
      '  maxHandshakeBytes: 65536',
      '  drainTimeout: 1500',
      '  tcpKeepAlive: false',
      '  greeting: gateway',
      'routes:',
      '  - name: inherits',
      '    listen: "[::1]:3307"',
      '    backend: "[fd00::5]:3306"',
      `    tls: { cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)} }`,
      '  - name: overrides',
      '    listen: 127.0.0.1:3308',
      '    backend: 10.0.0.5:3306',
      `    tls: { mode: preferred, cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)} }`,
      '    backendTls: { mode: verify-identity, servername: db.internal }',
      '    timeouts: { idle: 500ms }',
      '    maxConnections: 7',
      '    greeting: backend',
      '    serverVersion: "8.0.36-gw"',
      '',
    ].join('\n')
    const config = await loadConfigFile(await ws.write(yaml))
    assert.deepEqual(config.log, { level: 'debug', format: 'pretty' })
    assert.deepEqual(config.admin, { listen: { host: '127.0.0.1', port: 9090 }, shutdownDelayMs: 0 })
    const [a, b] = config.routes
    assert.deepEqual(a!.listen, { host: '::1', port: 3307 })
    assert.deepEqual(a!.backend, { host: 'fd00::5', port: 3306 })
    assert.deepEqual(a!.tls, { mode: 'required', minVersion: 'TLSv1.3', cert: ws.pem.cert, key: ws.pem.key, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' })
    assert.deepEqual(a!.backendTls, { mode: 'verify-ca', ca: ws.pem.ca })
    assert.deepEqual(a!.timeouts, { connectMs: 2000, handshakeMs: 90000, idleMs: 8 * 3600_000 })
    assert.deepEqual([a!.maxConnections, a!.maxHandshakeBytes, a!.drainTimeoutMs, a!.tcpKeepAlive, a!.greeting], [50, 65536, 1500, false, 'gateway'])
    // Route values win key by key; the rest of each mapping still comes from defaults.
    assert.equal(b!.tls.mode, 'preferred')
    assert.equal(b!.tls.minVersion, 'TLSv1.3')
    assert.deepEqual(b!.backendTls, { mode: 'verify-identity', ca: ws.pem.ca, servername: 'db.internal' })
    assert.deepEqual(b!.timeouts, { connectMs: 2000, handshakeMs: 90000, idleMs: 500 })
    assert.deepEqual([b!.maxConnections, b!.greeting, b!.serverVersion], [7, 'backend', '8.0.36-gw'])
  })

  test('tls disabled carries no certificate paths', async () => {
    const yaml = ['routes:', '  - name: a', '    listen: 3307', '    backend: db:3306', `    tls: { mode: disabled, cert: ${q(ws.pem.cert)} }`, ''].join('\n')
    const config = await loadConfigFile(await ws.write(yaml))
    assert.deepEqual(config.routes[0]!.tls, { mode: 'disabled', minVersion: 'TLSv1.2' })
    assert.deepEqual(watchedFiles(config), [])
  })
})

describe('paths', () => {
  test('relative paths are relative to the config file, not the working directory', async () => {
    const sub = path.join(ws.dir, 'etc', 'gateway')
    await mkdir(path.join(sub, 'tls'), { recursive: true })
    await symlink(ws.pem.cert, path.join(sub, 'tls', 'server.crt'))
    await symlink(ws.pem.key, path.join(sub, 'tls', 'server.key'))
    await symlink(ws.pem.ca, path.join(ws.dir, 'etc', 'ca.pem'))
    const yaml = [
      'routes:',
      '  - name: a',
      '    listen: 3307',
      '    backend: db:3306',
      '    tls: { cert: tls/server.crt, key: ./tls/server.key, clientCA: ../ca.pem }',
      '',
    ].join('\n')
    const file = await ws.write(yaml, 'etc/gateway/gw.yaml')
    assert.notEqual(process.cwd(), sub)
    const config = await loadConfigFile(path.relative(process.cwd(), file))
    assert.equal(config.sourcePath, file)
    assert.deepEqual(config.routes[0]!.tls, {
      mode: 'required',
      minVersion: 'TLSv1.2',
      cert: path.join(sub, 'tls', 'server.crt'),
      key: path.join(sub, 'tls', 'server.key'),
      clientCA: path.join(ws.dir, 'etc', 'ca.pem'),
    })
  })

  test('watchedFiles lists every cert, key and CA once, in order', async () => {
    const route = (name: string, port: number, extra = ''): string =>
      [`  - name: ${name}`, `    listen: ${port}`, '    backend: db:3306', `    tls: { cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)}${extra} }`].join('\n')
    const yaml = [
      `defaults: { backendTls: { mode: verify-ca, ca: ${q(ws.pem.ca)} } }`,
      'routes:',
      route('a', 3307),
      route('b', 3308, `, clientCA: ${q(ws.pem.ca)}`),
      '',
    ].join('\n')
    const config = await loadConfigFile(await ws.write(yaml))
    assert.deepEqual(watchedFiles(config), [ws.pem.cert, ws.pem.key, ws.pem.ca])
  })
})

describe('the result', () => {
  test('is deep-frozen plain JSON that survives IPC unchanged', async () => {
    const yaml = ['admin: { listen: "127.0.0.1:9090" }', 'routes:', '  - name: a', '    listen: 3307', '    backend: db:3306', `    tls: { cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)} }`, ''].join('\n')
    const config = await loadConfigFile(await ws.write(yaml))
    assert.deepEqual(JSON.parse(JSON.stringify(config)), config)
    assert.ok(Object.isFrozen(config))
    assert.ok(Object.isFrozen(config.routes))
    assert.ok(Object.isFrozen(config.routes[0]!.tls))
    assert.ok(Object.isFrozen(config.routes[0]!.serverNames))
    assert.throws(() => {
      ;(config.routes[0]!.timeouts as { idleMs: number }).idleMs = 1
    }, TypeError)
  })

  test('YAML anchors, aliases and merge keys work, and positions point at the anchored original', async () => {
    const yaml = [
      'x-tls: &tls',
      `  cert: ${q(ws.pem.cert)}`,
      `  key: ${q(ws.pem.key)}`,
      '  mode: sometimes',
      'routes:',
      '  - name: a',
      '    listen: 3307',
      '    backend: db:3306',
      '    tls:',
      '      <<: *tls',
      '',
    ].join('\n')
    // Top-level x- keys are ignored, so shared blocks can live there.
    assert.deepEqual(await ws.problems(yaml), ['4:9 routes[0].tls.mode: must be one of required, preferred, disabled'])
    const fixed = await loadConfigFile(await ws.write(yaml.replace('sometimes', 'preferred')))
    assert.deepEqual(fixed.routes[0]!.tls, { mode: 'preferred', minVersion: 'TLSv1.2', cert: ws.pem.cert, key: ws.pem.key })
    assert.equal('x-tls' in fixed, false)
  })
})
