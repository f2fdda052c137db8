import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { MAX_FRAME_PAYLOAD } from '../../../src/protocol/constants.js'
import {
  encodeMessage,
  frameCount,
  PacketFramer,
  PacketTooLargeError,
  SequenceGapError,
  type Message,
} from '../../../src/protocol/packet-framer.js'
import { framesFrom, greetingFrame, handshakeResponseFrame } from '../../fixtures/protocol/fixtures.js'
import { bytes, frame, int1, int3, payloadOf } from '../../helpers/packets.js'
import { cut, forEverySplit } from '../../helpers/split.js'

/** Pushes chunks one by one, draining complete messages after each push, like a socket `data` handler. */
function feed(chunks: Buffer[], framer = new PacketFramer()): { messages: Message[]; framer: PacketFramer } {
  const messages: Message[] = []
  for (const chunk of chunks) {
    framer.push(chunk)
    for (let m = framer.next(); m !== null; m = framer.next()) messages.push(m)
  }
  return { messages, framer }
}

/** A recognisable payload (a 251-byte cycle, so a frame boundary or offset slip shows up as different bytes). */
function pattern(length: number, salt = 0): Buffer {
  const cycle = Buffer.from(Array.from({ length: 251 }, (_, i) => (i * 7 + salt) & 0xff))
  return Buffer.alloc(length, cycle)
}

/** A header alone: 3-byte length and seq, for frames whose body is added separately. */
const header = (length: number, seq: number): Buffer => bytes(int3(length), int1(seq))

describe('PacketFramer on real MariaDB frames', () => {
  test('greeting at every split: one message, seq 0, one frame, nothing left over', () => {
    const wire = greetingFrame('mysql2')
    forEverySplit(wire, (chunks, label) => {
      const { messages, framer } = feed(chunks)
      assert.equal(messages.length, 1, label)
      assert.deepEqual(messages[0], { seq: 0, frames: 1, payload: payloadOf(wire) }, label)
      assert.equal(framer.buffered, 0, label)
    })
  })

  test('HandshakeResponse > 255 bytes at every split', () => {
    const wire = handshakeResponseFrame('mysql2ManyAttributes')
    assert.ok(wire.length > 255 + 4)
    forEverySplit(wire, (chunks, label) => {
      const { messages } = feed(chunks)
      assert.deepEqual(messages, [{ seq: 1, frames: 1, payload: payloadOf(wire) }], label)
    })
  })

  test('five result-set packets in one chunk, at every split', () => {
    // Column count, column definition, EOF, row, EOF: the server's answer to SELECT 1, seq 1..5.
    const frames = framesFrom('mysql2', 'server').slice(2)
    assert.equal(frames.length, 5)
    const wire = Buffer.concat(frames)
    forEverySplit(wire, (chunks, label) => {
      const { messages, framer } = feed(chunks)
      assert.deepEqual(
        messages,
        frames.map((f, i) => ({ seq: i + 1, frames: 1, payload: payloadOf(f) })),
        label
      )
      assert.equal(framer.buffered, 0, label)
    })
  })

  test('header split 1+2+1: no message until the last header byte and the body are in', () => {
    const wire = greetingFrame('mariadbCli')
    const framer = new PacketFramer()
    const [a, b, c, body] = cut(wire, [1, 3, 4])
    for (const part of [a!, b!, c!]) {
      framer.push(part)
      assert.equal(framer.next(), null)
    }
    assert.equal(framer.buffered, 4)
    framer.push(body!.subarray(0, body!.length - 1))
    assert.equal(framer.next(), null, 'one body byte short')
    framer.push(body!.subarray(body!.length - 1))
    assert.deepEqual(framer.next(), { seq: 0, frames: 1, payload: payloadOf(wire) })
    assert.equal(framer.next(), null)
  })

  test('zero-length packet (the real empty switch answer) followed by the OK, at every split', () => {
    // rawProbeSwitch: the client answers the native switch with an empty packet (seq 3) for an empty password.
    const empty = framesFrom('rawProbeSwitch', 'client')[1]!
    assert.deepEqual(empty, Buffer.from([0, 0, 0, 3]))
    const ok = framesFrom('rawProbeSwitch', 'server')[2]!
    forEverySplit(Buffer.concat([empty, ok, empty]), (chunks, label) => {
      const { messages, framer } = feed(chunks)
      assert.deepEqual(
        messages,
        [
          { seq: 3, frames: 1, payload: Buffer.alloc(0) },
          { seq: 4, frames: 1, payload: payloadOf(ok) },
          { seq: 3, frames: 1, payload: Buffer.alloc(0) },
        ],
        label
      )
      assert.equal(framer.buffered, 0, label)
    })
  })
})

describe('PacketFramer continuation frames', () => {
  test('exactly 0xFFFFFF bytes: full frame + empty terminator frame, message only after the terminator', () => {
    const payload = pattern(MAX_FRAME_PAYLOAD)
    const first = bytes(header(MAX_FRAME_PAYLOAD, 7), payload)
    const terminator = header(0, 8)
    const wire = Buffer.concat([first, terminator])

    const framer = new PacketFramer()
    framer.push(first)
    assert.equal(framer.next(), null, 'a 0xFFFFFF frame alone is not a whole message')
    for (const byte of terminator) {
      assert.equal(framer.next(), null)
      framer.push(Buffer.from([byte]))
    }
    const m = framer.next()
    assert.ok(m)
    assert.equal(m.seq, 7)
    assert.equal(m.frames, 2)
    assert.equal(m.payload.length, MAX_FRAME_PAYLOAD)
    assert.ok(m.payload.equals(payload))
    assert.equal(framer.buffered, 0)

    // Cuts inside the first header, mid-body, right before and inside the terminator header.
    for (const cuts of [[1, 3], [2], [4 + 1000], [first.length], [first.length + 1, first.length + 3], [wire.length - 1]]) {
      const { messages } = feed(cut(wire, cuts))
      assert.equal(messages.length, 1, `cuts ${cuts}`)
      assert.equal(messages[0]!.frames, 2)
      assert.ok(messages[0]!.payload.equals(payload), `cuts ${cuts}`)
    }
  })

  test('a message over 16 MiB: three frames, one sequence id each, and the packet after it', () => {
    const length = 2 * MAX_FRAME_PAYLOAD + 5
    const payload = pattern(length, 3)
    const wire = Buffer.concat([
      header(MAX_FRAME_PAYLOAD, 1),
      payload.subarray(0, MAX_FRAME_PAYLOAD),
      header(MAX_FRAME_PAYLOAD, 2),
      payload.subarray(MAX_FRAME_PAYLOAD, 2 * MAX_FRAME_PAYLOAD),
      header(5, 3),
      payload.subarray(2 * MAX_FRAME_PAYLOAD),
      frame(4, Buffer.from([0xfe])),
    ])
    const second = 4 + MAX_FRAME_PAYLOAD
    const { messages } = feed(cut(wire, [2, second + 2, 2 * second, 2 * second + 4, wire.length - 3]))
    assert.equal(messages.length, 2)
    assert.equal(messages[0]!.seq, 1)
    assert.equal(messages[0]!.frames, 3)
    assert.ok(messages[0]!.payload.equals(payload))
    assert.deepEqual(messages[1], { seq: 4, frames: 1, payload: Buffer.from([0xfe]) })
  })

  test('sequence ids wrap 255 -> 0 inside a message', () => {
    const payload = pattern(MAX_FRAME_PAYLOAD + 9)
    const wire = Buffer.concat([
      header(MAX_FRAME_PAYLOAD, 255),
      payload.subarray(0, MAX_FRAME_PAYLOAD),
      header(9, 0),
      payload.subarray(MAX_FRAME_PAYLOAD),
    ])
    const { messages } = feed([wire])
    assert.equal(messages.length, 1)
    assert.equal(messages[0]!.seq, 255)
    assert.equal(messages[0]!.frames, 2)
    assert.ok(messages[0]!.payload.equals(payload))
  })

  test('a sequence gap inside a message throws as soon as the bad header arrives', () => {
    const first = bytes(header(MAX_FRAME_PAYLOAD, 3), pattern(MAX_FRAME_PAYLOAD))
    const framer = new PacketFramer()
    framer.push(first)
    assert.equal(framer.next(), null)
    framer.push(header(10, 5)) // body not sent
    assert.throws(
      () => framer.next(),
      (err: unknown) => err instanceof SequenceGapError && err.expected === 4 && err.got === 5
    )
  })

  test('after 255 the next frame must be 0, not 256 or 1', () => {
    const framer = new PacketFramer()
    framer.push(bytes(header(MAX_FRAME_PAYLOAD, 255), pattern(MAX_FRAME_PAYLOAD), header(0, 1)))
    assert.throws(
      () => framer.next(),
      (err: unknown) => err instanceof SequenceGapError && err.expected === 0 && err.got === 1
    )
  })
})

describe('PacketFramer size cap', () => {
  const MiB = 1024 * 1024

  test('throws PacketTooLargeError from the header alone, before any body byte', () => {
    forEverySplit(header(MiB + 1, 1), (chunks, label) => {
      const framer = new PacketFramer(MiB)
      let thrown: unknown
      for (const chunk of chunks) {
        framer.push(chunk)
        try {
          assert.equal(framer.next(), null, label)
        } catch (err) {
          thrown = err
        }
      }
      assert.ok(thrown instanceof PacketTooLargeError, label)
      assert.equal(thrown.size, MiB + 1)
      assert.equal(thrown.limit, MiB)
    })
  })

  test('a message of exactly the cap is accepted', () => {
    const payload = pattern(MiB)
    const { messages } = feed([header(MiB, 1), payload], new PacketFramer(MiB))
    assert.equal(messages.length, 1)
    assert.ok(messages[0]!.payload.equals(payload))
  })

  test('continuation frames count towards the cap; the second header trips it', () => {
    const framer = new PacketFramer(MAX_FRAME_PAYLOAD + 10)
    framer.push(bytes(header(MAX_FRAME_PAYLOAD, 1), pattern(MAX_FRAME_PAYLOAD)))
    assert.equal(framer.next(), null)
    framer.push(header(11, 2))
    assert.throws(
      () => framer.next(),
      (err: unknown) => err instanceof PacketTooLargeError && err.size === MAX_FRAME_PAYLOAD + 11
    )
  })
})

describe('PacketFramer.takeRemainder', () => {
  // The backend's OK ends the auth phase (mysql2 session, seq 2); whatever follows it in the same read belongs
  // to the raw command-phase stream and must come out byte for byte (notes §3.3, checklist 20).
  const ok = framesFrom('mysql2', 'server')[1]!
  const after = Buffer.concat(framesFrom('mysql2', 'server').slice(2))

  test('OK + command-phase bytes at every split: the bytes after the OK come out unchanged', () => {
    assert.equal(payloadOf(ok)[0], 0x00)
    forEverySplit(Buffer.concat([ok, after]), (chunks, label) => {
      const framer = new PacketFramer()
      let message: Message | null = null
      let i = 0
      while (message === null) {
        framer.push(chunks[i++]!)
        message = framer.next()
      }
      assert.deepEqual(message, { seq: 2, frames: 1, payload: payloadOf(ok) }, label)
      const rest = Buffer.concat([framer.takeRemainder(), ...chunks.slice(i)])
      assert.ok(rest.equals(after), label)
      assert.equal(framer.buffered, 0, label)
      assert.equal(framer.next(), null, label)
    })
  })

  test('a partial header after the message is handed over too', () => {
    const framer = new PacketFramer()
    framer.push(Buffer.concat([ok, after.subarray(0, 2)]))
    assert.ok(framer.next())
    assert.equal(framer.next(), null)
    assert.deepEqual(framer.takeRemainder(), after.subarray(0, 2))
    assert.deepEqual(framer.takeRemainder(), Buffer.alloc(0))
  })
})

describe('encodeMessage', () => {
  test('frameCount: a length that is a multiple of 0xFFFFFF needs an extra empty frame', () => {
    assert.equal(frameCount(0), 1)
    assert.equal(frameCount(MAX_FRAME_PAYLOAD - 1), 1)
    assert.equal(frameCount(MAX_FRAME_PAYLOAD), 2)
    assert.equal(frameCount(MAX_FRAME_PAYLOAD + 1), 2)
    assert.equal(frameCount(2 * MAX_FRAME_PAYLOAD), 3)
  })

  test('small payloads are one frame, byte for byte', () => {
    assert.deepEqual(encodeMessage(0, Buffer.alloc(0)), Buffer.from([0, 0, 0, 0]))
    assert.deepEqual(encodeMessage(2, Buffer.from([0xfe])), Buffer.from([1, 0, 0, 2, 0xfe]))
    assert.deepEqual(encodeMessage(300, Buffer.from([1])), Buffer.from([1, 0, 0, 44, 1]), 'seq is taken mod 256')
    const greeting = greetingFrame('mariadbConnector')
    assert.deepEqual(encodeMessage(0, payloadOf(greeting)), greeting)
  })

  for (const length of [MAX_FRAME_PAYLOAD - 1, MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD + 1, 2 * MAX_FRAME_PAYLOAD]) {
    test(`${length} bytes from seq 254: headers, seq per frame, and the framer reads it back`, () => {
      const payload = pattern(length, 11)
      const wire = encodeMessage(254, payload)
      const frames = frameCount(length)
      assert.equal(wire.length, length + 4 * frames)
      let offset = 0
      for (let i = 0; i < frames; i++) {
        const frameLength = Math.min(MAX_FRAME_PAYLOAD, length - i * MAX_FRAME_PAYLOAD)
        assert.equal(wire.readUIntLE(offset, 3), frameLength, `frame ${i} length`)
        assert.equal(wire[offset + 3], (254 + i) & 0xff, `frame ${i} seq`)
        offset += 4 + frameLength
      }
      const { messages, framer } = feed(cut(wire, [3, 4 + MAX_FRAME_PAYLOAD - 1]))
      assert.equal(messages.length, 1)
      assert.equal(messages[0]!.seq, 254)
      assert.equal(messages[0]!.frames, frames)
      assert.ok(messages[0]!.payload.equals(payload))
      assert.equal(framer.buffered, 0)
    })
  }
})
