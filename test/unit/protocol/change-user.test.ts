import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeChangeUser, parseChangeUser } from '../../../src/protocol/change-user.js'
import {
  CLIENT_CONNECT_ATTRS,
  CLIENT_PLUGIN_AUTH,
  CLIENT_PROTOCOL_41,
  CLIENT_SECURE_CONNECTION,
} from '../../../src/protocol/constants.js'
import { bytes, int1, int2, lenencStr, nul } from '../../helpers/packets.js'

const CAPS = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_ATTRS

test('COM_CHANGE_USER as mysql2 sends it parses and re-encodes byte for byte', () => {
  const auth = Buffer.alloc(20, 7)
  const attrs = Buffer.concat([lenencStr('_client_name'), lenencStr('test')])
  const payload = bytes(int1(0x11), nul('alice'), int1(20), auth, nul('shop'), int2(45), nul('mysql_native_password'), lenencStr(attrs))
  const cu = parseChangeUser(payload, CAPS)
  assert.equal(cu.user, 'alice')
  assert.deepEqual(cu.authResponse, auth)
  assert.equal(cu.schemaBytes.toString(), 'shop')
  assert.equal(cu.characterSet, 45)
  assert.equal(cu.authPluginName, 'mysql_native_password')
  assert.deepEqual(cu.attributes, attrs)
  assert.deepEqual(encodeChangeUser(cu, CAPS, 33), payload)
})

test('the gateway rewrite: empty auth data and the probe plugin; charset filled in when the client omitted it', () => {
  const payload = bytes(int1(0x11), nul('bob'), int1(3), Buffer.from([1, 2, 3]), nul(''))
  const cu = parseChangeUser(payload, CAPS)
  assert.equal(cu.characterSet, undefined)
  const out = encodeChangeUser({ ...cu, authResponse: Buffer.alloc(0), authPluginName: 'gw_probe' }, CAPS, 45)
  assert.deepEqual(out, bytes(int1(0x11), nul('bob'), int1(0), nul(''), int2(45), nul('gw_probe')))
})

test('a truncated COM_CHANGE_USER throws instead of reading past the end', () => {
  assert.throws(() => parseChangeUser(bytes(int1(0x11), Buffer.from('no-nul')), CAPS))
  assert.throws(() => parseChangeUser(bytes(int1(0x03), nul('x')), CAPS))
})
