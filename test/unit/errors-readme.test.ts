import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ERROR_CODES } from '../../src/errors.js'

test('every internal error code is documented in README and nothing else is', () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('<!-- section:errors -->'), readme.indexOf('<!-- /section:errors -->'))
  const documented = new Set([...section.matchAll(/`(GW_ERR_[A-Z_]+)`/g)].map((m) => m[1]))
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort())
})
