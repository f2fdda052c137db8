import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import path from 'node:path'
import { describe, test } from 'node:test'
import { parseAuthSwitch } from '../../../src/protocol/auth-switch.js'
import { MalformedPacketError } from '../../../src/protocol/buffer-reader.js'
import {
  CLIENT_COMPRESS,
  CLIENT_CONNECT_ATTRS,
  CLIENT_LONG_FLAG,
  CLIENT_LONG_PASSWORD,
  CLIENT_PLUGIN_AUTH,
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
  CLIENT_PROTOCOL_41,
  CLIENT_SECURE_CONNECTION,
  CLIENT_SSL,
  CLIENT_TRANSACTIONS,
  CLIENT_ZSTD_COMPRESSION,
} from '../../../src/protocol/constants.js'
import {
  encodeGatewayGreeting,
  greetingWithCapabilities,
  greetingWithSsl,
  parseGreeting,
} from '../../../src/protocol/greeting.js'
import { PacketFramer } from '../../../src/protocol/packet-framer.js'
import {
  ALL_SESSIONS,
  framesFrom,
  greetingFrame,
  greetingPayload,
  MARIADB_VERSION,
  MYSQL8_GREETING,
  MYSQL8_SCRAMBLE,
} from '../../fixtures/protocol/fixtures.js'
import { bytes, diffIndexes, frame, int1, int2, int4, nul, payloadOf, zeros } from '../../helpers/packets.js'
import { forEverySplit } from '../../helpers/split.js'

/** v = index of the NUL ending the server version (notes §2). */
const versionEnd = (payload: Buffer): number => payload.indexOf(0, 1)

/** The 20-byte scramble read straight from the documented offsets: part 1 at v+5, part 2 at v+32. */
function scrambleAtOffsets(payload: Buffer): Buffer {
  const v = versionEnd(payload)
  return Buffer.concat([payload.subarray(v + 5, v + 13), payload.subarray(v + 32, v + 44)])
}

describe('parseGreeting on real MariaDB 10.11 greetings', () => {
  for (const session of ALL_SESSIONS) {
    test(`${session}: version, thread id, scramble, plugin, capabilities`, () => {
      const payload = greetingPayload(session)
      const v = versionEnd(payload)
      assert.equal(v, 1 + MARIADB_VERSION.length)
      const g = parseGreeting(payload)
      assert.equal(g.protocolVersion, 10)
      assert.equal(g.serverVersion, MARIADB_VERSION)
      assert.equal(g.connectionId, payload.readUInt32LE(v + 1))
      assert.ok(g.connectionId > 0)
      assert.equal(g.scramble.length, 20)
      assert.deepEqual(g.scramble, scrambleAtOffsets(payload))
      assert.equal(g.authPluginName, 'mysql_native_password')
      // fef7 / ff81 on the wire: MariaDB leaves CLIENT_MYSQL (bit 0) clear and this server has no TLS.
      assert.equal(g.capabilities, 0x81fff7fe)
      assert.ok(g.capabilities & CLIENT_PROTOCOL_41)
      assert.ok(g.capabilities & CLIENT_SECURE_CONNECTION)
      assert.ok(g.capabilities & CLIENT_PLUGIN_AUTH)
      assert.equal(g.capabilities & CLIENT_SSL, 0)
      assert.equal(g.capabilities & CLIENT_LONG_PASSWORD, 0)
      // MariaDB extended caps at v+28: PROGRESS(32) STMT_BULK_OPERATIONS(34) EXTENDED_METADATA(35) CACHE_METADATA(36).
      assert.equal(g.extendedCapabilities, 0x1d)
      assert.equal(g.collation, 45)
      assert.equal(g.status, 0x0002)
    })
  }

  test('the scramble is the one the server then sends in its AuthSwitchRequest (real switch)', () => {
    const greeting = parseGreeting(greetingPayload('rawProbeSwitch'))
    const sw = parseAuthSwitch(payloadOf(framesFrom('rawProbeSwitch', 'server')[1]!))
    assert.ok(sw)
    assert.deepEqual(sw.data, greeting.scramble)
  })

  test('greeting frame through the framer at every split parses the same', () => {
    const wire = greetingFrame('mariadbCli')
    const expected = parseGreeting(payloadOf(wire))
    forEverySplit(wire, (chunks, label) => {
      const framer = new PacketFramer()
      for (const c of chunks) framer.push(c)
      const m = framer.next()
      assert.ok(m, label)
      assert.deepEqual(parseGreeting(m.payload), expected, label)
    })
  })
})

describe('parseGreeting on a MySQL 8-style greeting (built from the docs)', () => {
  test('collation 255, caching_sha2_password, unsigned 32-bit caps, no MariaDB extended caps', () => {
    const g = parseGreeting(MYSQL8_GREETING)
    assert.equal(g.serverVersion, '8.0.40')
    assert.equal(g.connectionId, 42)
    assert.equal(g.collation, 255)
    assert.equal(g.status, 2)
    assert.equal(g.capabilities, 0xdffff7ff, 'bit 31 set must not make the number negative')
    assert.deepEqual(g.scramble, MYSQL8_SCRAMBLE)
    assert.equal(g.authPluginName, 'caching_sha2_password')
    assert.equal(g.extendedCapabilities, 0)
  })

  test('bytes at v+28 are ignored when CLIENT_LONG_PASSWORD (CLIENT_MYSQL) is set', () => {
    const payload = Buffer.from(MYSQL8_GREETING)
    payload.writeUInt32LE(0x1d, versionEnd(payload) + 28)
    assert.equal(parseGreeting(payload).extendedCapabilities, 0)
    // ...and read when it is clear.
    payload[versionEnd(payload) + 14]! &= ~CLIENT_LONG_PASSWORD
    assert.equal(parseGreeting(payload).extendedCapabilities, 0x1d)
  })

  test('auth data length > 21 takes len-8 bytes for part 2', () => {
    // A 32-byte nonce (e.g. a plugin with a longer challenge): part 2 = 24 bytes + NUL, length byte 33.
    const nonce = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x21 + i))
    const payload = bytes(
      int1(10), nul('8.0.40'), int4(1), nonce.subarray(0, 8), int1(0), int2(0xf7ff), int1(255), int2(2), int2(0xdfff),
      int1(33), zeros(10), nonce.subarray(8), int1(0), nul('some_plugin')
    )
    const g = parseGreeting(payload)
    assert.deepEqual(g.scramble, nonce)
    assert.equal(g.authPluginName, 'some_plugin')
  })

  test('not protocol 10, or truncated: MalformedPacketError', () => {
    const v9 = Buffer.from(MYSQL8_GREETING)
    v9[0] = 9
    assert.throws(() => parseGreeting(v9), MalformedPacketError)
    assert.throws(() => parseGreeting(MYSQL8_GREETING.subarray(0, 12)), MalformedPacketError)
    assert.throws(() => parseGreeting(Buffer.from([0xff, 0x10, 0x04])), MalformedPacketError, 'an ERR greeting')
  })
})

describe('greetingWithSsl', () => {
  for (const session of ['mysql2', 'mariadbCli'] as const) {
    test(`${session}: setting CLIENT_SSL changes exactly byte v+15, by 0x08`, () => {
      const original = greetingPayload(session)
      const before = Buffer.from(original)
      const out = greetingWithSsl(original, true)
      const v = versionEnd(original)
      assert.deepEqual(diffIndexes(original, out), [v + 15])
      assert.equal(out[v + 15]! ^ original[v + 15]!, 0x08)
      assert.ok(parseGreeting(out).capabilities & CLIENT_SSL)
      assert.deepEqual(original, before, 'input not modified')
      // Clearing it again gives the original back; clearing an already clear bit changes nothing.
      assert.deepEqual(greetingWithSsl(out, false), original)
      assert.deepEqual(greetingWithSsl(original, false), original)
    })
  }

  test('MySQL 8 greeting: set then clear, only byte v+15 moves', () => {
    const on = greetingWithSsl(MYSQL8_GREETING, true)
    assert.deepEqual(diffIndexes(MYSQL8_GREETING, on), [versionEnd(MYSQL8_GREETING) + 15])
    assert.equal(parseGreeting(on).capabilities, 0xdfffffff)
  })

  test('rejects something that is not a HandshakeV10', () => {
    assert.throws(() => greetingWithSsl(Buffer.from([0xff, 0x10, 0x04, 0x54]), true), MalformedPacketError)
    assert.throws(() => greetingWithSsl(Buffer.from([10, 0x38, 0x00, 1, 2]), true), MalformedPacketError)
  })
})

describe('greetingWithCapabilities', () => {
  test('sets and clears bits in both words, only the four capability bytes can change', () => {
    const original = greetingPayload('mariadbConnector')
    const set = CLIENT_SSL
    const clear = CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION | (1 << 31)
    const out = greetingWithCapabilities(original, set, clear)
    const v = versionEnd(original)
    for (const i of diffIndexes(original, out)) assert.ok([v + 14, v + 15, v + 19, v + 20].includes(i), `byte ${i} changed`)
    const before = parseGreeting(original)
    const after = parseGreeting(out)
    assert.equal(after.capabilities, ((before.capabilities | set) & ~clear) >>> 0)
    assert.equal(after.capabilities & CLIENT_COMPRESS, 0)
    assert.equal(after.capabilities & (1 << 31), 0)
    assert.deepEqual({ ...after, capabilities: 0 }, { ...before, capabilities: 0 })
  })

  test('clears ZSTD_COMPRESSION (bit 26, high word) in the MySQL 8 greeting', () => {
    assert.ok(parseGreeting(MYSQL8_GREETING).capabilities & CLIENT_ZSTD_COMPRESSION)
    const out = greetingWithCapabilities(MYSQL8_GREETING, 0, CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION)
    const v = versionEnd(MYSQL8_GREETING)
    assert.deepEqual(diffIndexes(MYSQL8_GREETING, out), [v + 14, v + 19 + 1])
    assert.equal(parseGreeting(out).capabilities, (0xdffff7ff & ~CLIENT_COMPRESS & ~CLIENT_ZSTD_COMPRESSION) >>> 0)
  })

  test('nothing to set or clear: identical bytes', () => {
    const original = greetingPayload('mysql2')
    assert.deepEqual(greetingWithCapabilities(original, 0, 0), original)
  })
})

describe('encodeGatewayGreeting', () => {
  const scramble = Buffer.from('0123456789:;<=>?@ABC', 'latin1')
  const options = {
    serverVersion: '8.0.40-gw',
    capabilities:
      CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_TRANSACTIONS | CLIENT_SSL | CLIENT_CONNECT_ATTRS |
      CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
    collation: 45,
    scramble,
    authPluginName: 'caching_sha2_password',
  }

  test('byte layout per notes §2/§5', () => {
    const caps = options.capabilities | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
    const expected = bytes(
      int1(10), nul('8.0.40-gw'), int4(0), scramble.subarray(0, 8), int1(0), int2(caps & 0xffff), int1(45), int2(2),
      int2(caps >>> 16), int1(21), zeros(10), scramble.subarray(8), int1(0), nul('caching_sha2_password')
    )
    assert.deepEqual(encodeGatewayGreeting(options), expected)
  })

  test('parseGreeting reads back what was encoded', () => {
    const g = parseGreeting(encodeGatewayGreeting(options))
    assert.equal(g.serverVersion, '8.0.40-gw')
    assert.equal(g.connectionId, 0)
    assert.equal(g.collation, 45)
    assert.equal(g.status, 2)
    assert.deepEqual(g.scramble, scramble)
    assert.equal(g.authPluginName, 'caching_sha2_password')
    assert.equal(g.capabilities, options.capabilities | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH)
    assert.equal(g.extendedCapabilities, 0)
  })

  test("mysql2's own Handshake parser reads it the same way", () => {
    // mysql2 does not export its packet classes; load them by file from its package directory.
    const require = createRequire(import.meta.url)
    const root = path.dirname(require.resolve('mysql2'))
    const Packet = require(path.join(root, 'lib/packets/packet.js'))
    const Handshake = require(path.join(root, 'lib/packets/handshake.js'))
    const wire = frame(0, encodeGatewayGreeting(options))
    const h = Handshake.fromPacket(new Packet(0, wire, 0, wire.length))
    assert.equal(h.protocolVersion, 10)
    assert.equal(h.serverVersion, '8.0.40-gw')
    assert.equal(h.connectionId, 0)
    assert.equal(h.characterSet, 45)
    assert.equal(h.statusFlags, 2)
    assert.equal(h.capabilityFlags, parseGreeting(payloadOf(wire)).capabilities)
    assert.equal(h.authPluginName, 'caching_sha2_password')
    // mysql2 keeps part 2 with its NUL and slices to 20 when hashing (notes §4.1).
    assert.deepEqual(Buffer.concat([h.authPluginData1, h.authPluginData2]).subarray(0, 20), scramble)
    assert.equal(h.authPluginData2.length, 13)
    assert.equal(h.authPluginData2[12], 0)
    assert.equal(h.mariadbExtendedCapabilityFlags, 0)
  })

  test('scramble must be exactly 20 bytes', () => {
    assert.throws(() => encodeGatewayGreeting({ ...options, scramble: scramble.subarray(0, 19) }), RangeError)
    assert.throws(() => encodeGatewayGreeting({ ...options, scramble: Buffer.concat([scramble, int1(0)]) }), RangeError)
  })
})
