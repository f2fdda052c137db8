/**
 * Hygiene of schemas/gateway.schema.json: it documents every property (the README reference is generated
 * from it), rejects unknown keys everywhere, and its `default` annotations are the defaults the loader applies.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseDuration } from '../../../src/config/durations.js'
import { BUILTIN_DEFAULTS } from '../../../src/config/normalize.js'
import { referenceEntries } from '../../../src/config/reference.js'
import { loadSchema } from '../../../src/config/schema.js'

type Node = Record<string, unknown>

function* objects(node: unknown, where = '#'): Generator<[string, Node]> {
  if (!node || typeof node !== 'object') return
  if (!Array.isArray(node)) yield [where, node as Node]
  for (const [key, child] of Object.entries(node)) yield* objects(child, `${where}/${key}`)
}

test('draft 2020-12 with an $id', () => {
  const schema = loadSchema()
  assert.equal(schema['$schema'], 'https://json-schema.org/draft/2020-12/schema')
  assert.equal(typeof schema['$id'], 'string')
})

test('every object schema forbids unknown keys', () => {
  for (const [where, node] of objects(loadSchema())) {
    if (node['type'] === 'object') assert.equal(node['additionalProperties'], false, where)
  }
})

test('every property has a title and a description', () => {
  for (const [where, node] of objects(loadSchema())) {
    const properties = node['properties'] as Record<string, Node> | undefined
    if (!properties || where.endsWith('/properties')) continue
    for (const [name, prop] of Object.entries(properties)) {
      assert.equal(typeof prop['title'], 'string', `${where}/properties/${name} needs a title`)
      assert.equal(typeof prop['description'], 'string', `${where}/properties/${name} needs a description`)
    }
  }
})

test('schema defaults are the defaults the loader applies', () => {
  const defaults = new Map(referenceEntries().map((e) => [e.key, e.default.replace(/^`|`$/g, '')]))
  const expect = (key: string, value: unknown): void => {
    const documented = defaults.get(key)
    const parsed = typeof value === 'number' && /timeouts|drainTimeout|shutdownDelay/.test(key) ? parseDuration(documented === '0' ? 0 : documented) : documented
    assert.equal(String(parsed), String(value), key)
  }
  for (const prefix of ['defaults', 'routes[]']) {
    expect(`${prefix}.tls.mode`, BUILTIN_DEFAULTS.tls.mode)
    expect(`${prefix}.tls.minVersion`, BUILTIN_DEFAULTS.tls.minVersion)
    expect(`${prefix}.backendTls.mode`, BUILTIN_DEFAULTS.backendTls.mode)
    expect(`${prefix}.timeouts.connect`, BUILTIN_DEFAULTS.timeouts.connect)
    expect(`${prefix}.timeouts.handshake`, BUILTIN_DEFAULTS.timeouts.handshake)
    expect(`${prefix}.timeouts.idle`, BUILTIN_DEFAULTS.timeouts.idle)
    expect(`${prefix}.maxConnections`, BUILTIN_DEFAULTS.maxConnections)
    expect(`${prefix}.maxHandshakeBytes`, BUILTIN_DEFAULTS.maxHandshakeBytes)
    expect(`${prefix}.drainTimeout`, BUILTIN_DEFAULTS.drainTimeout)
    expect(`${prefix}.tcpKeepAlive`, BUILTIN_DEFAULTS.tcpKeepAlive)
    expect(`${prefix}.greeting`, BUILTIN_DEFAULTS.greeting)
  }
  expect('routes[].default', BUILTIN_DEFAULTS.default)
  expect('log.level', BUILTIN_DEFAULTS.log.level)
  expect('log.format', BUILTIN_DEFAULTS.log.format)
  expect('admin.shutdownDelay', BUILTIN_DEFAULTS.admin.shutdownDelay)
})
