/**
 * config/proxy.yaml validates once --dev-certs has created its certificates (done in a temp copy: the
 * checkout's config/certs is never touched), and the generated certificate really serves TLS for localhost.
 */
import assert from 'node:assert/strict'
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { after, before, test } from 'node:test'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { ensureDevCerts } from '../../../src/cli/dev-certs.js'
import { loadConfigFile, validateConfigFile } from '../../../src/config/load.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..')
const HANDSHAKE_TIMEOUT_MS = 5_000

/** A pino logger whose lines land in an array, to assert on what --dev-certs logs. */
function capture(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk))
      done()
    },
  })
  return {
    log: pino({ level: 'info' }, sink),
    lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  }
}

let dir: string
let file: string
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gw-example-test-'))
  file = path.join(dir, 'proxy.yaml')
  await copyFile(path.join(ROOT, 'config', 'proxy.yaml'), file)
})
after(() => rm(dir, { recursive: true, force: true }))

test('without certificates the example names the missing files', async () => {
  const result = await validateConfigFile(file)
  assert.equal(result.ok, false)
  assert.ok(!result.ok && result.problems.some((p) => /routes\[0\]\.tls\.cert: cannot read .*dev-server\.crt: no such file/.test(p)))
})

test('after --dev-certs it validates as is', async () => {
  const { log, lines } = capture()
  const created = await ensureDevCerts(file, log)
  assert.deepEqual(created, [path.join(dir, 'certs', 'dev-server.crt')])
  const config = await loadConfigFile(file)
  assert.equal(config.routes.length, 1)
  assert.deepEqual(config.routes[0]!.listen, { host: '127.0.0.1', port: 3307 })
  assert.deepEqual(config.routes[0]!.backend, { host: '127.0.0.1', port: 3306 })
  assert.deepEqual(config.admin, { listen: { host: '127.0.0.1', port: 9090 }, shutdownDelayMs: 0 })
  // One line per pair, naming files only; nothing that looks like key material.
  const messages = lines().map((l) => l['msg'])
  assert.deepEqual(messages, ['development ca created', 'development certificate created for localhost'])
  const logged = JSON.stringify(lines())
  assert.ok(!logged.includes('PRIVATE KEY'))
  assert.equal((await stat(path.join(dir, 'certs', 'dev-server.key'))).mode & 0o777, 0o600)
  assert.equal((await stat(path.join(dir, 'certs', 'dev-ca.key'))).mode & 0o777, 0o600)
})

test('a second run creates nothing and leaves the files alone', async () => {
  const before = await readFile(path.join(dir, 'certs', 'dev-server.crt'), 'utf8')
  const { log, lines } = capture()
  assert.deepEqual(await ensureDevCerts(file, log), [])
  assert.deepEqual(lines(), [])
  assert.equal(await readFile(path.join(dir, 'certs', 'dev-server.crt'), 'utf8'), before)
})

test('half a pair is never completed (it would not match)', async () => {
  const other = path.join(dir, 'half.yaml')
  const yaml = (await readFile(file, 'utf8')).replace('certs/dev-server.crt', 'certs/other.crt').replace('certs/dev-server.key', 'certs/other.key')
  await writeFile(other, yaml)
  await writeFile(path.join(dir, 'certs', 'other.crt'), 'someone else\'s certificate\n')
  const { log, lines } = capture()
  assert.deepEqual(await ensureDevCerts(other, log), [])
  assert.deepEqual(lines().map((l) => l['msg']), ['development certificate not created: half of the pair exists'])
  assert.equal(await readFile(path.join(dir, 'certs', 'other.crt'), 'utf8'), 'someone else\'s certificate\n')
})

test('the development certificate serves TLS that verifies against the development CA', async () => {
  const [cert, key, ca] = await Promise.all(
    ['dev-server.crt', 'dev-server.key', 'dev-ca.crt'].map((f) => readFile(path.join(dir, 'certs', f), 'utf8'))
  )
  const server = tls.createServer({ cert, key }, (socket) => socket.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  try {
    for (const servername of ['localhost', undefined]) {
      const authorized = await new Promise<boolean>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ca, servername, timeout: HANDSHAKE_TIMEOUT_MS })
        socket.once('secureConnect', () => {
          resolve(socket.authorized)
          socket.destroy()
        })
        socket.once('timeout', () => reject(new Error('TLS handshake timed out')))
        socket.once('error', reject)
      })
      assert.equal(authorized, true, `servername ${servername ?? '(IP 127.0.0.1)'}`)
    }
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
})
