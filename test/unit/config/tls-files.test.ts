/**
 * Certificate, key and CA files are read and checked at validation time, and problems point at the key that
 * names the file. Throwaway material is minted per run by fixtures.ts.
 */
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { loadConfigFile } from '../../../src/config/load.js'
import { q, workspace, type Workspace } from './fixtures.js'

let ws: Workspace
before(async () => {
  ws = await workspace()
})
after(() => ws.cleanup())

/** One route; its tls line is line 5 and `extra` lines follow from line 6. */
function file(tls: string, ...extra: string[]): string {
  return ['routes:', '  - name: a', '    listen: 127.0.0.1:3307', '    backend: 127.0.0.1:3306', `    tls: ${tls}`, ...extra.map((l) => `    ${l}`), ''].join('\n')
}

describe('certificate and key', () => {
  test('a key that does not belong to the certificate', async () => {
    const problems = await ws.problems(file(`{ cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.otherKey)} }`))
    assert.equal(problems.length, 1)
    const col = 5 + `tls: { cert: ${q(ws.pem.cert)}, key: `.length
    assert.equal(problems[0], `5:${col} routes[0].tls.key: does not match the certificate in ${ws.pem.cert} (subject CN=localhost)`)
  })

  test('a missing certificate file', async () => {
    const missing = path.join(ws.dir, 'nope.crt')
    const problems = await ws.problems(file(`{ cert: ${q(missing)}, key: ${q(ws.pem.key)} }`))
    assert.deepEqual(problems, [`5:18 routes[0].tls.cert: cannot read ${missing}: no such file (ENOENT)`])
  })

  test('a certificate file that is not PEM', async () => {
    const junk = path.join(ws.dir, 'junk.crt')
    await writeFile(junk, 'hello\n')
    const problems = await ws.problems(file(`{ cert: ${q(junk)}, key: ${q(ws.pem.key)} }`))
    assert.deepEqual(problems, [`5:18 routes[0].tls.cert: ${junk} contains no PEM certificate (-----BEGIN CERTIFICATE-----)`])
  })

  test('a PEM block that does not parse', async () => {
    const broken = path.join(ws.dir, 'broken.crt')
    await writeFile(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    const problems = await ws.problems(file(`{ cert: ${q(broken)}, key: ${q(ws.pem.key)} }`))
    assert.deepEqual(problems, [`5:18 routes[0].tls.cert: certificate 1 of 1 in ${broken} does not parse`])
  })

  test('an encrypted key is refused with the reason, never its contents', async () => {
    const problems = await ws.problems(file(`{ cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.encryptedKey)} }`))
    assert.equal(problems.length, 1)
    assert.match(problems[0]!, /routes\[0\]\.tls\.key: .*encrypted\.key is an encrypted private key; the gateway needs it unencrypted/)
    const keyText = await readFile(ws.pem.encryptedKey, 'utf8')
    assert.ok(!problems[0]!.includes(keyText.split('\n')[1]!))
  })

  test('a certificate where the key should be', async () => {
    const problems = await ws.problems(file(`{ cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.cert)} }`))
    assert.equal(problems.length, 1)
    assert.match(problems[0]!, /routes\[0\]\.tls\.key: .*leaf\.crt contains no usable PEM private key$/)
  })

  test('a directory is not a PEM file', async () => {
    const problems = await ws.problems(file(`{ cert: ${q(ws.dir)}, key: ${q(ws.pem.key)} }`))
    assert.deepEqual(problems, [`5:18 routes[0].tls.cert: ${ws.dir} is not a regular file`])
  })

  test('a cipher list that matches nothing', async () => {
    const problems = await ws.problems(file(`{ cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)}, ciphers: NOT-A-CIPHER }`))
    assert.equal(problems.length, 1)
    assert.match(problems[0]!, /^5:\d+ routes\[0\]\.tls\.ciphers: no cipher matches "NOT-A-CIPHER" in this OpenSSL build$/)
  })
})

describe('CA bundles', () => {
  test('clientCA and backendTls.ca parse', async () => {
    const yaml = file(`{ cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)}, clientCA: ${q(ws.pem.ca)} }`, `backendTls: { mode: verify-identity, ca: ${q(ws.pem.ca)} }`)
    const config = await loadConfigFile(await ws.write(yaml))
    assert.equal(config.routes[0]!.tls.clientCA, ws.pem.ca)
    assert.equal(config.routes[0]!.backendTls.ca, ws.pem.ca)
  })

  test('a broken CA in defaults is reported once, where defaults sets it', async () => {
    const junk = path.join(ws.dir, 'junk-ca.pem')
    await writeFile(junk, 'not a certificate\n')
    const route = (name: string, port: number): string =>
      [`  - name: ${name}`, `    listen: 127.0.0.1:${port}`, '    backend: db:3306', `    tls: { cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)} }`].join('\n')
    const yaml = [`defaults: { tls: { clientCA: ${q(junk)} }, backendTls: { mode: verify-ca } }`, 'routes:', route('a', 3307), route('b', 3308), ''].join('\n')
    assert.deepEqual(await ws.problems(yaml), [`1:30 defaults.tls.clientCA: ${junk} contains no PEM certificate (-----BEGIN CERTIFICATE-----)`])
  })

  test('verify-ca without a ca uses the default trust store (no ca in the result)', async () => {
    const yaml = file(`{ cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)} }`, 'backendTls: { mode: verify-identity, servername: db.internal }')
    const config = await loadConfigFile(await ws.write(yaml))
    assert.deepEqual(config.routes[0]!.backendTls, { mode: 'verify-identity', servername: 'db.internal' })
  })
})
