/**
 * The small parsers behind the YAML values: durations, addresses, server names.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { addressesOverlap, parseAddress } from '../../../src/config/addresses.js'
import { MAX_DURATION_MS, parseDuration } from '../../../src/config/durations.js'
import { normalizeServerName } from '../../../src/config/server-names.js'

describe('durations', () => {
  const good: Array<[unknown, number]> = [
    [0, 0],
    [1500, 1500],
    ['500ms', 500],
    ['5s', 5000],
    ['2m', 120_000],
    ['8h', 28_800_000],
    ['1m30s', 90_000],
    ['1h30m', 5_400_000],
    ['2s500ms', 2500],
    ['0s', 0],
  ]
  for (const [input, ms] of good) test(`${JSON.stringify(input)} is ${ms} ms`, () => assert.equal(parseDuration(input), ms))

  for (const input of ['', '5', '5 s', '1.5s', '-1s', '30s1m', '5sec', '1d', 'ms', -1, 1.5, true, null]) {
    test(`${JSON.stringify(input)} is not a duration`, () => assert.equal(parseDuration(input), undefined))
  }

  test('the Node.js timer limit is exposed for the range check', () => {
    assert.equal(MAX_DURATION_MS, 2 ** 31 - 1)
    assert.ok(parseDuration('597h')! > MAX_DURATION_MS)
    assert.ok(parseDuration('596h')! <= MAX_DURATION_MS)
  })
})

describe('addresses', () => {
  test('bare ports take the given host', () => {
    assert.deepEqual(parseAddress(3307, '0.0.0.0'), { ok: true, value: { host: '0.0.0.0', port: 3307 } })
    assert.deepEqual(parseAddress('9090', '127.0.0.1'), { ok: true, value: { host: '127.0.0.1', port: 9090 } })
    assert.deepEqual(parseAddress(3306, undefined), { ok: false, message: 'must include a host: "host:port"' })
  })

  test('host:port, [v6]:port and names', () => {
    assert.deepEqual(parseAddress('10.0.0.5:3306', undefined), { ok: true, value: { host: '10.0.0.5', port: 3306 } })
    assert.deepEqual(parseAddress('[::1]:3307', undefined), { ok: true, value: { host: '::1', port: 3307 } })
    assert.deepEqual(parseAddress('[fe80::1%eth0]:3307', undefined), { ok: true, value: { host: 'fe80::1%eth0', port: 3307 } })
    assert.deepEqual(parseAddress('db.internal:3306', undefined), { ok: true, value: { host: 'db.internal', port: 3306 } })
  })

  test('what a pattern cannot catch', () => {
    assert.deepEqual(parseAddress('127.0.0.1:0', undefined), { ok: false, message: 'port 0 is out of range (1-65535)' })
    assert.deepEqual(parseAddress('[zz::1]:3307', undefined), { ok: false, message: '"zz::1" is not an IPv6 address' })
    assert.deepEqual(parseAddress('::1:3307', undefined), {
      ok: false,
      message: 'must be "host:port" or "[ipv6]:port" (IPv6 addresses need brackets)',
    })
  })

  test('overlap: same socket, or a wildcard of the family', () => {
    const at = (host: string, port = 3307) => ({ host, port })
    assert.equal(addressesOverlap(at('0.0.0.0'), at('127.0.0.1')), true)
    assert.equal(addressesOverlap(at('::'), at('127.0.0.1')), true)
    assert.equal(addressesOverlap(at('0.0.0.0'), at('::1')), false)
    assert.equal(addressesOverlap(at('127.0.0.1'), at('127.0.0.2')), false)
    assert.equal(addressesOverlap(at('0.0.0.0'), at('0.0.0.0', 3308)), false)
  })
})

describe('server names', () => {
  test('stored lower-case without a trailing dot, so duplicates compare like DNS names', () => {
    assert.equal(normalizeServerName('DB.Example.COM.'), 'db.example.com')
    assert.equal(normalizeServerName('*.Example.com'), '*.example.com')
  })
})
