import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { BufferReader, encodeLenenc, MalformedPacketError } from '../../../src/protocol/buffer-reader.js'
import { bytes, lenenc } from '../../helpers/packets.js'

describe('BufferReader', () => {
  test('int1/int2/int4 are little-endian and advance the offset', () => {
    const r = new BufferReader(bytes('0a 3412 78563412 ffffffff'))
    assert.equal(r.int1(), 0x0a)
    assert.equal(r.int2(), 0x1234)
    assert.equal(r.int4(), 0x12345678)
    assert.equal(r.int4(), 0xffffffff, 'unsigned')
    assert.equal(r.remaining, 0)
  })

  test('bytes, nulBytes and rest', () => {
    const r = new BufferReader(bytes('01 02 03', Buffer.from('root\0'), Buffer.from('\0'), 'aa bb'))
    assert.deepEqual(r.bytes(3), Buffer.from([1, 2, 3]))
    assert.deepEqual(r.nulBytes(), Buffer.from('root'))
    assert.deepEqual(r.nulBytes(), Buffer.alloc(0), 'an empty NUL string')
    assert.equal(r.offset, 9)
    assert.deepEqual(r.rest(), Buffer.from([0xaa, 0xbb]))
    assert.equal(r.remaining, 0)
    assert.deepEqual(r.rest(), Buffer.alloc(0))
  })

  test('lenenc: every prefix form', () => {
    const cases: Array<[string, number]> = [
      ['00', 0],
      ['fa', 250],
      ['fc fb00', 251],
      ['fc 8200', 130], // non-minimal, as the MariaDB Node connector writes attribute lengths
      ['fc ffff', 0xffff],
      ['fd 000001', 0x10000],
      ['fd ffffff', 0xffffff],
      ['fe 0000000100000000', 0x1000000],
      ['fe 0000000001000000', 2 ** 32],
    ]
    for (const [hex, value] of cases) {
      const r = new BufferReader(bytes(hex))
      assert.equal(r.lenenc(), value, hex)
      assert.equal(r.remaining, 0, hex)
    }
  })

  test('lenenc: 0xFB (NULL) and 0xFF are not lengths', () => {
    assert.throws(() => new BufferReader(bytes('fb')).lenenc(), MalformedPacketError)
    assert.throws(() => new BufferReader(bytes('ff')).lenenc(), MalformedPacketError)
  })

  test('every read past the end throws MalformedPacketError and does not move the offset', () => {
    const reads: Array<[string, (r: BufferReader) => unknown]> = [
      ['', (r) => r.int1()],
      ['01', (r) => r.int2()],
      ['010203', (r) => r.int4()],
      ['0102', (r) => r.bytes(3)],
      ['726f6f74', (r) => r.nulBytes()],
      ['', (r) => r.lenenc()],
      ['fc01', (r) => r.lenenc()],
      ['fd0102', (r) => r.lenenc()],
      ['fe01020304050607', (r) => r.lenenc()],
    ]
    for (const [hex, read] of reads) {
      const r = new BufferReader(bytes(hex))
      assert.throws(() => read(r), MalformedPacketError, hex)
    }
    const r = new BufferReader(bytes('0102'))
    assert.throws(() => r.int4(), MalformedPacketError)
    assert.equal(r.offset, 0)
  })
})

describe('encodeLenenc', () => {
  test('shortest form at every boundary, matching the independent builder and read back', () => {
    for (const n of [0, 1, 250, 251, 252, 0xffff, 0x10000, 0xffffff, 0x1000000, 2 ** 40]) {
      const encoded = encodeLenenc(n)
      assert.deepEqual(encoded, lenenc(n), String(n))
      const r = new BufferReader(encoded)
      assert.equal(r.lenenc(), n)
      assert.equal(r.remaining, 0)
    }
    assert.equal(encodeLenenc(250).length, 1)
    assert.equal(encodeLenenc(251).length, 3)
    assert.equal(encodeLenenc(0x10000).length, 4)
    assert.equal(encodeLenenc(0x1000000).length, 9)
  })
})
