// The replay helper every codec test relies on: if it silently skipped split points, those tests would prove less.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { cut, forEverySplit, splits } from '../../helpers/split.js'

test('every chunking reassembles to the input and has no empty chunk', () => {
  const input = Buffer.from('0123456789abcdef')
  let runs = 0
  forEverySplit(input, (chunks, label) => {
    runs++
    assert.deepEqual(Buffer.concat(chunks), input, label)
    for (const c of chunks) assert.ok(c.length > 0, label)
  })
  // unsplit + 15 single cuts + 1-byte chunks + 8 random
  assert.equal(runs, 1 + 15 + 1 + 8)
})

test('single cuts cover every position, and the 1-byte chunking is there', () => {
  const input = Buffer.from([1, 2, 3, 4, 5, 6, 7])
  const all = splits(input)
  const firstLengths = new Set(all.filter((s) => s.chunks.length === 2).map((s) => s.chunks[0]!.length))
  assert.deepEqual([...firstLengths].sort(), [1, 2, 3, 4, 5, 6])
  assert.ok(all.some((s) => s.chunks.length === input.length && s.chunks.every((c) => c.length === 1)))
  assert.ok(all.filter((s) => s.label.startsWith('random')).every((s) => s.chunks.length >= 3))
})

test('random cuts are reproducible for a seed and differ between seeds', () => {
  const input = Buffer.alloc(200, 7)
  const labels = (seed?: number) => splits(input, seed === undefined ? {} : { seed }).map((s) => s.label)
  assert.deepEqual(labels(), labels())
  assert.notDeepEqual(labels(1), labels(2))
})

test('tiny inputs: empty and 1 byte', () => {
  assert.deepEqual(splits(Buffer.alloc(0)).map((s) => s.label), ['unsplit'])
  assert.deepEqual(splits(Buffer.from([9])).map((s) => s.label), ['unsplit'])
})

test('cut at explicit positions', () => {
  assert.deepEqual(cut(Buffer.from([1, 2, 3, 4]), [1, 3]), [Buffer.from([1]), Buffer.from([2, 3]), Buffer.from([4])])
})
