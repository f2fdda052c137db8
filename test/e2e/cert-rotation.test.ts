/**
 * Certificate rotation with the same paths: the running child swaps its TLS context (no restart); an open
 * session keeps answering while a new handshake sees the new certificate; a broken certificate is refused and
 * the current one stays in use.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { copyFile, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { mintLeaf } from '../helpers/certs.js'
import { testEnv, tmpDir } from '../helpers/env.js'
import { freePort } from '../helpers/cli.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { connectTls, peerFingerprint } from './support/clients.js'
import { gatewayYaml, writeInPlace } from './support/config-files.js'
import { startGateway } from './support/gateway-run.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_rotate' })))
after(() => db.close())

/** Replaces a file atomically (cert-manager and most tools do; never a half-written PEM). */
async function replace(target: string, source: string): Promise<void> {
  const tmp = `${target}.tmp`
  await copyFile(source, tmp)
  await rename(tmp, target)
}

async function fingerprint(file: string): Promise<string> {
  return new X509Certificate(await readFile(file)).fingerprint256
}

test('rotating cert and key in place: open session unaffected, new handshakes get the new certificate', async () => {
  const dir = tmpDir('cert-rotation')
  const sans = ['DNS:localhost', 'IP:127.0.0.1']
  const [first, second] = await Promise.all([
    mintLeaf(env.pki, 'localhost', { sans, dir }),
    mintLeaf(env.pki, 'localhost', { sans, dir }),
  ])
  const cert = path.join(dir, 'tls.crt')
  const key = path.join(dir, 'tls.key')
  await copyFile(first.cert, cert)
  await copyFile(first.key, key)
  const configPath = path.join(dir, 'gateway.yaml')
  const [port, adminPort] = [await freePort(), await freePort()]
  await writeInPlace(configPath, gatewayYaml(env, { routes: [{ name: 'rot', port, cert, key }], adminPort }))
  const gw = await startGateway(configPath, { adminPort })
  try {
    const pid = (await gw.routes())[0]!.pid
    const open = await connectTls(env, port, account)
    assert.equal(peerFingerprint(open), await fingerprint(first.cert))
    await open.query('SET @before_rotation = 41')

    let since = gw.mark()
    await replace(key, second.key)
    await replace(cert, second.cert)
    await gw.waitForLog((l) => l.msg === 'tls material reloaded' && l.route === 'rot', 'tls reload', { since })
    const fresh = await connectTls(env, port, account)
    assert.equal(peerFingerprint(fresh), await fingerprint(second.cert), 'new handshake sees the new certificate')
    await fresh.end()
    // The session from before the rotation still works, with its session state intact.
    const [rows] = await open.query('SELECT @before_rotation + 1 AS n')
    assert.equal(Number((rows as Array<{ n: number }>)[0]!.n), 42)
    assert.equal(peerFingerprint(open), await fingerprint(first.cert))
    assert.equal((await gw.routes())[0]!.pid, pid, 'no restart')

    // A broken certificate: logged, refused, the current one stays.
    since = gw.mark()
    await writeFile(`${cert}.tmp`, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n')
    await rename(`${cert}.tmp`, cert)
    const failed = await gw.waitForLog((l) => /tls reload failed/.test(String(l.msg)) && l.route === 'rot', 'tls reload failure', { since })
    assert.equal(failed.level, 50)
    const after = await connectTls(env, port, account)
    assert.equal(peerFingerprint(after), await fingerprint(second.cert))
    await after.end()
    await open.end()
    assert.equal((await gw.routes())[0]!.pid, pid)
  } finally {
    const { code } = await gw.stop()
    assert.equal(code, 0)
  }
})
