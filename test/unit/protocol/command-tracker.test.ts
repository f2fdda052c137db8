import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { CommandTracker } from '../../../src/protocol/command-tracker.js'
import { bytes, frame, int1, nul } from '../../helpers/packets.js'
import { forEverySplit } from '../../helpers/split.js'

const changeUser = frame(0, bytes(int1(0x11), nul('bob'), int1(0), nul('db')))
const query = (sql: string) => frame(0, bytes(int1(0x03), Buffer.from(sql)))

/** Feeds chunks, returns [bytes forwarded, bytes handed over as COM_CHANGE_USER (or null)]. */
function run(chunks: Buffer[], tracker = new CommandTracker()): [Buffer, Buffer | null] {
  const forwarded: Buffer[] = []
  for (const chunk of chunks) {
    const r = tracker.push(chunk)
    forwarded.push(r.forward)
    if (r.changeUser) return [Buffer.concat(forwarded), r.changeUser]
  }
  return [Buffer.concat(forwarded), null]
}

describe('CommandTracker', () => {
  test('ordinary commands pass through untouched at every split', () => {
    const stream = Buffer.concat([query('SELECT 1'), query('SELECT 2')])
    forEverySplit(stream, (chunks, label) => {
      const [forwarded, found] = run(chunks)
      assert.equal(found, null, label)
      assert.deepEqual(forwarded, stream, label)
    })
  })

  test('COM_CHANGE_USER after a query is found at its header, at every split', () => {
    const before = query('SELECT 1')
    const stream = Buffer.concat([before, changeUser])
    forEverySplit(stream, (chunks, label) => {
      const tracker = new CommandTracker()
      const forwarded: Buffer[] = []
      let handed: Buffer | null = null
      for (const chunk of chunks) {
        if (handed) {
          handed = Buffer.concat([handed, chunk])
          continue
        }
        const r = tracker.push(chunk)
        forwarded.push(r.forward)
        if (r.changeUser) handed = r.changeUser
        // The relay answered the query before the client sent its next command.
        if (Buffer.concat(forwarded).length === before.length) tracker.backendSpoke = true
      }
      assert.deepEqual(Buffer.concat(forwarded), before, label)
      assert.deepEqual(handed, changeUser, label)
    })
  })

  test('a 0x11 byte inside a continuation frame or a LOAD DATA upload is data, not a command', () => {
    // Upload packets run 2..255 then wrap to 0 with no backend bytes in between.
    const tracker = new CommandTracker()
    tracker.push(query("LOAD DATA LOCAL INFILE 'x' INTO TABLE t"))
    tracker.backendSpoke = true // the server's 0xFB request
    for (let seq = 2; seq <= 255; seq++) assert.equal(tracker.push(frame(seq, Buffer.from([0x11, 1, 2]))).changeUser, undefined)
    const wrapped = tracker.push(frame(0, Buffer.from([0x11, 0, 0, 0])))
    assert.equal(wrapped.changeUser, undefined, 'seq 0 right after 255 with a silent server continues the upload')
    assert.equal(wrapped.forward.length, 8)
  })

  test('a 16 MiB command and its continuation frames are walked by header, not searched for 0x11', () => {
    const tracker = new CommandTracker()
    const big = Buffer.alloc(0xffffff, 0x11)
    big[0] = 0x03 // COM_QUERY whose text is full of 0x11 bytes
    const first = tracker.push(frame(0, big))
    assert.ok(first.changeUser === undefined && first.forward.length === big.length + 4)
    assert.ok(tracker.push(frame(1, Buffer.from([0x11, 0x11]))).changeUser === undefined)
    tracker.backendSpoke = true
    assert.ok(tracker.push(changeUser).changeUser, 'the next real command is still found')
  })

  test('after reset() the stream is at a command boundary again', () => {
    const tracker = new CommandTracker()
    assert.ok(tracker.push(changeUser).changeUser)
    tracker.reset()
    assert.ok(tracker.push(changeUser).changeUser)
  })
})
