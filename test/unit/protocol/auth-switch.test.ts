import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseAuthSwitch } from '../../../src/protocol/auth-switch.js'
import {
  CACHING_SHA2_SWITCH,
  ED25519_NONCE,
  ED25519_NONCE_ENDING_IN_NUL,
  ed25519Switch,
  framesFrom,
  greetingPayload,
  MYSQL8_SCRAMBLE,
} from '../../fixtures/protocol/fixtures.js'
import { bytes, int1, nul, payloadOf } from '../../helpers/packets.js'

describe('parseAuthSwitch', () => {
  test('real MariaDB switch to mysql_native_password: scramble + NUL, NUL dropped', () => {
    const payload = payloadOf(framesFrom('rawProbeSwitch', 'server')[1]!)
    assert.equal(payload.length, 1 + 'mysql_native_password'.length + 1 + 21)
    const sw = parseAuthSwitch(payload)
    assert.ok(sw)
    assert.equal(sw.pluginName, 'mysql_native_password')
    assert.equal(sw.data.length, 20)
    // notes §6.4: for native the switch carries the backend's own greeting scramble.
    assert.deepEqual(sw.data, payload.subarray(payload.length - 21, payload.length - 1))
    const greeting = greetingPayload('rawProbeSwitch')
    const v = greeting.indexOf(0, 1)
    assert.deepEqual(sw.data, Buffer.concat([greeting.subarray(v + 5, v + 13), greeting.subarray(v + 32, v + 44)]))
  })

  test('caching_sha2_password: 20-byte scramble, NUL dropped', () => {
    assert.deepEqual(parseAuthSwitch(CACHING_SHA2_SWITCH), { pluginName: 'caching_sha2_password', data: MYSQL8_SCRAMBLE })
  })

  test('client_ed25519: the 32-byte nonce is returned whole (no terminator to strip)', () => {
    assert.deepEqual(parseAuthSwitch(ed25519Switch(ED25519_NONCE)), { pluginName: 'client_ed25519', data: ED25519_NONCE })
  })

  test('client_ed25519: a nonce whose last byte is 0x00 keeps all 32 bytes', () => {
    // The server writes exactly 32 random bytes (MariaDB plugin/auth_ed25519/server_ed25519.c); 1 in 256 end in 0.
    const sw = parseAuthSwitch(ed25519Switch(ED25519_NONCE_ENDING_IN_NUL))
    assert.ok(sw)
    assert.equal(sw.data.length, 32)
    assert.deepEqual(sw.data, ED25519_NONCE_ENDING_IN_NUL)
  })

  test('parsec: the 32-byte nonce is returned whole as well', () => {
    const sw = parseAuthSwitch(bytes(int1(0xfe), nul('parsec'), ED25519_NONCE_ENDING_IN_NUL))
    assert.deepEqual(sw, { pluginName: 'parsec', data: ED25519_NONCE_ENDING_IN_NUL })
  })

  test('sha256_password: scramble + NUL, NUL dropped', () => {
    const sw = parseAuthSwitch(bytes(int1(0xfe), nul('sha256_password'), MYSQL8_SCRAMBLE, int1(0)))
    assert.deepEqual(sw, { pluginName: 'sha256_password', data: MYSQL8_SCRAMBLE })
  })

  test('a plugin without a NUL-terminated scramble gets its data exactly as sent', () => {
    const data = Buffer.from([0x04, 0x50, 0x61, 0x73, 0x73, 0x3a, 0x20, 0x00])
    assert.deepEqual(parseAuthSwitch(bytes(int1(0xfe), nul('dialog'), data)), { pluginName: 'dialog', data })
  })

  test('1-byte 0xFE: the old 3.23 switch (mysql_old_password, no data)', () => {
    assert.deepEqual(parseAuthSwitch(Buffer.from([0xfe])), { pluginName: 'mysql_old_password', data: Buffer.alloc(0) })
  })

  test('dialog with empty data (PAM, notes §6.4) and a plugin name without NUL', () => {
    assert.deepEqual(parseAuthSwitch(bytes(int1(0xfe), nul('dialog'))), { pluginName: 'dialog', data: Buffer.alloc(0) })
    assert.deepEqual(parseAuthSwitch(bytes(int1(0xfe), Buffer.from('dialog'))), { pluginName: 'dialog', data: Buffer.alloc(0) })
  })

  test('anything not starting with 0xFE is not a switch', () => {
    for (const p of [Buffer.alloc(0), Buffer.from([0x00, 0, 0, 2, 0]), Buffer.from([0x01, 0x04]), Buffer.from([0xff, 0x15, 0x04])]) {
      assert.equal(parseAuthSwitch(p), null)
    }
  })
})
