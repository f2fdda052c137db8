import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as c from '../../../src/protocol/constants.js'

test('capability bits are the documented bit numbers (notes §2)', () => {
  const bits: Record<string, number> = {
    CLIENT_LONG_PASSWORD: 0,
    CLIENT_FOUND_ROWS: 1,
    CLIENT_LONG_FLAG: 2,
    CLIENT_CONNECT_WITH_DB: 3,
    CLIENT_NO_SCHEMA: 4,
    CLIENT_COMPRESS: 5,
    CLIENT_ODBC: 6,
    CLIENT_LOCAL_FILES: 7,
    CLIENT_IGNORE_SPACE: 8,
    CLIENT_PROTOCOL_41: 9,
    CLIENT_INTERACTIVE: 10,
    CLIENT_SSL: 11,
    CLIENT_IGNORE_SIGPIPE: 12,
    CLIENT_TRANSACTIONS: 13,
    CLIENT_SECURE_CONNECTION: 15,
    CLIENT_MULTI_STATEMENTS: 16,
    CLIENT_MULTI_RESULTS: 17,
    CLIENT_PS_MULTI_RESULTS: 18,
    CLIENT_PLUGIN_AUTH: 19,
    CLIENT_CONNECT_ATTRS: 20,
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: 21,
    CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS: 22,
    CLIENT_SESSION_TRACK: 23,
    CLIENT_DEPRECATE_EOF: 24,
    CLIENT_OPTIONAL_RESULTSET_METADATA: 25,
    CLIENT_ZSTD_COMPRESSION: 26,
    CLIENT_QUERY_ATTRIBUTES: 27,
    CLIENT_MULTI_FACTOR_AUTHENTICATION: 28,
  }
  for (const [name, bit] of Object.entries(bits)) {
    assert.equal((c as unknown as Record<string, number>)[name], 2 ** bit, name)
  }
  // The wire bytes the notes quote: CLIENT_SSL is payload[1] & 0x08 in a HandshakeResponse.
  assert.equal(c.CLIENT_SSL >> 8, 0x08)
})

test('framing, header bytes, plugin-status bytes and error numbers', () => {
  assert.equal(c.MAX_FRAME_PAYLOAD, 0xffffff)
  assert.equal(c.HEADER_LENGTH, 4)
  assert.equal(c.SSL_REQUEST_LENGTH, 32)
  assert.deepEqual(
    [c.OK_HEADER, c.AUTH_MORE_DATA_HEADER, c.AUTH_SWITCH_HEADER, c.LOCAL_INFILE_HEADER, c.ERR_HEADER, c.COM_CHANGE_USER],
    [0x00, 0x01, 0xfe, 0xfb, 0xff, 0x11]
  )
  assert.deepEqual(
    [c.CACHING_SHA2_FAST_AUTH_OK, c.CACHING_SHA2_PERFORM_FULL_AUTH, c.CACHING_SHA2_REQUEST_PUBLIC_KEY, c.SHA256_REQUEST_PUBLIC_KEY],
    [0x03, 0x04, 0x02, 0x01]
  )
  assert.deepEqual(
    [
      c.ER_CON_COUNT_ERROR, c.ER_HANDSHAKE_ERROR, c.ER_ACCESS_DENIED_ERROR, c.ER_UNKNOWN_ERROR, c.ER_NET_PACKET_TOO_LARGE,
      c.ER_NET_PACKETS_OUT_OF_ORDER, c.ER_NOT_SUPPORTED_AUTH_MODE, c.ER_SECURE_TRANSPORT_REQUIRED,
    ],
    [1040, 1043, 1045, 1105, 1153, 1156, 1251, 3159]
  )
  assert.equal(c.PROBE_PLUGIN_NAME, 'gw_probe')
})

test('no gateway error number is in the client ranges 2000-2999 / 5000-5999 (notes §5)', () => {
  for (const [name, value] of Object.entries(c)) {
    if (!name.startsWith('ER_')) continue
    assert.ok(!((value as number) >= 2000 && (value as number) <= 2999), name)
    assert.ok(!((value as number) >= 5000 && (value as number) <= 5999), name)
  }
})
