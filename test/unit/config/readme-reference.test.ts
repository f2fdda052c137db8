/**
 * README's configuration reference and the schema list the same keys, so neither can drift from the other.
 * To update the README table: `npm run build && node dist/src/config/reference.js`.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { referenceEntries } from '../../../src/config/reference.js'

// dist/test/unit/config -> repository root
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..')

function readmeSection(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const start = readme.indexOf('<!-- section:config-reference -->')
  const end = readme.indexOf('<!-- /section:config-reference -->')
  assert.ok(start >= 0 && end > start, 'README.md lacks the config-reference section markers')
  return readme.slice(start, end)
}

/** First-column keys of the reference table: rows shaped "| `routes[].tls.mode` | ...". */
function documentedKeys(section: string): string[] {
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!)
}

test('every schema key is documented in the README', () => {
  const documented = new Set(documentedKeys(readmeSection()))
  const missing = referenceEntries().map((e) => e.key).filter((key) => !documented.has(key))
  assert.deepEqual(missing, [], `README config reference lacks: ${missing.join(', ')}`)
})

test('every documented key exists in the schema', () => {
  const known = new Set(referenceEntries().map((e) => e.key))
  const unknown = documentedKeys(readmeSection()).filter((key) => !known.has(key))
  assert.deepEqual(unknown, [], `README documents keys the schema does not have: ${unknown.join(', ')}`)
})

test('each key is documented once', () => {
  const keys = documentedKeys(readmeSection())
  assert.deepEqual(keys.filter((k, i) => keys.indexOf(k) !== i), [])
})

test('the walker sees nested keys through $ref and arrays', () => {
  const keys = referenceEntries().map((e) => e.key)
  for (const key of ['log.level', 'admin.listen', 'defaults.timeouts.idle', 'routes[].tls.clientCA', 'routes[].backendTls.servername']) {
    assert.ok(keys.includes(key), key)
  }
})
