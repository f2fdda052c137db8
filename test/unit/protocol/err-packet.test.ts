import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  ER_HANDSHAKE_ERROR,
  ER_NET_PACKET_TOO_LARGE,
  ER_SECURE_TRANSPORT_REQUIRED,
} from '../../../src/protocol/constants.js'
import { encodeErr, parseErr, withSqlState } from '../../../src/protocol/err-packet.js'
import { ERR_GREETING_1040, ERR_GREETING_1129, framesFrom } from '../../fixtures/protocol/fixtures.js'
import { bytes, int1, int2, payloadOf } from '../../helpers/packets.js'

describe('encodeErr', () => {
  test('3159 / HY000 begins FF 57 0C 23 48 59 30 30 30, then the message', () => {
    const msg = 'Connections using insecure transport are prohibited while --require_secure_transport=ON.'
    const out = encodeErr(ER_SECURE_TRANSPORT_REQUIRED, 'HY000', msg)
    assert.deepEqual(out.subarray(0, 9), Buffer.from([0xff, 0x57, 0x0c, 0x23, 0x48, 0x59, 0x30, 0x30, 0x30]))
    assert.equal(out.toString('utf8', 9), msg)
    assert.equal(out.length, 9 + msg.length)
  })

  test('1043 / 08S01 and 1153 / 08S01 byte for byte', () => {
    assert.deepEqual(encodeErr(ER_HANDSHAKE_ERROR, '08S01', 'Bad handshake'), bytes('ff 1304 23 3038533031', Buffer.from('Bad handshake')))
    assert.deepEqual(encodeErr(ER_NET_PACKET_TOO_LARGE, '08S01', ''), bytes('ff 8104 23 3038533031'))
  })

  test('a UTF-8 message and a message over 512 bytes (cut to 512)', () => {
    const out = encodeErr(1045, '28000', "Accès refusé pour l'utilisateur 'ünï'")
    assert.equal(parseErr(out).message, "Accès refusé pour l'utilisateur 'ünï'")
    const long = encodeErr(1105, 'HY000', 'x'.repeat(2000))
    assert.equal(long.length, 9 + 512)
  })

  test('the 512-byte cut never splits a UTF-8 character', () => {
    // 511 ASCII bytes then 'é' (C3 A9): a cut at byte 512 would leave a lone C3, shown as U+FFFD by clients.
    const out = encodeErr(1045, '28000', 'a'.repeat(511) + 'é' + 'b')
    assert.equal(out.length, 9 + 511)
    assert.equal(parseErr(out).message, 'a'.repeat(511))
    // 4-byte characters: 128 of them are exactly 512 bytes; one more is dropped whole.
    const emoji = '\u{1F512}'.repeat(129)
    assert.equal(parseErr(encodeErr(1045, '28000', emoji)).message, '\u{1F512}'.repeat(128))
    assert.equal(parseErr(encodeErr(1045, '28000', 'x' + emoji)).message, 'x' + '\u{1F512}'.repeat(127))
  })

  test('parse(encode(x)) round trip', () => {
    for (const [code, state, message] of [
      [1040, '08004', 'Too many connections'],
      [1045, '28000', "Access denied for user 'a'@'b'"],
      [9001, 'HY000', ''],
      [0xffff, 'ABCDE', 'max code'],
    ] as const) {
      assert.deepEqual(parseErr(encodeErr(code, state, message)), { code, sqlState: state, message })
    }
  })
})

describe('parseErr', () => {
  test('a real 4.1 ERR from MariaDB 10.11 (wrong password)', () => {
    const payload = payloadOf(framesFrom('rawWrongPassword', 'server')[1]!)
    assert.deepEqual(parseErr(payload), {
      code: 1045,
      sqlState: '28000',
      message: "Access denied for user 'root'@'127.0.0.1' (using password: YES)",
    })
    // And the bytes encodeErr makes for the same error are the server's bytes.
    assert.deepEqual(encodeErr(1045, '28000', parseErr(payload).message), payload)
  })

  test('pre-4.1 ERR greetings (1040, 1129): no SQLSTATE, message from byte 3', () => {
    assert.deepEqual(parseErr(ERR_GREETING_1040), { code: 1040, message: 'Too many connections' })
    const blocked = parseErr(ERR_GREETING_1129)
    assert.equal(blocked.code, 1129)
    assert.equal(blocked.sqlState, undefined)
    assert.match(blocked.message, /^Host '10\.0\.0\.7' is blocked/)
  })

  test('a short pre-4.1 ERR (< 9 bytes) and an ERR with only a code', () => {
    assert.deepEqual(parseErr(bytes(int1(0xff), int2(1040), Buffer.from('Busy'))), { code: 1040, message: 'Busy' })
    assert.deepEqual(parseErr(bytes(int1(0xff), int2(1040))), { code: 1040, message: '' })
  })

  test('not an ERR: code 0, no SQLSTATE', () => {
    assert.deepEqual(parseErr(Buffer.from([0x00, 0x00, 0x00, 0x02, 0x00])), { code: 0, message: '' })
    assert.deepEqual(parseErr(Buffer.from([0xff, 0x01])), { code: 0, message: '' })
  })
})

describe('withSqlState', () => {
  test("adds '#08004' to a pre-4.1 ERR greeting (relayed inside the auth phase, notes §6.3)", () => {
    const out = withSqlState(ERR_GREETING_1040)
    assert.deepEqual(out, bytes('ff 1004 23 3038303034', Buffer.from('Too many connections')))
    assert.deepEqual(parseErr(out), { code: 1040, sqlState: '08004', message: 'Too many connections' })
  })

  test('another SQLSTATE on request', () => {
    assert.equal(parseErr(withSqlState(ERR_GREETING_1129, 'HY000')).sqlState, 'HY000')
  })

  test('an ERR that already has one comes back as the same bytes', () => {
    const real = payloadOf(framesFrom('rawWrongPassword', 'server')[1]!)
    assert.equal(withSqlState(real), real)
  })
})
