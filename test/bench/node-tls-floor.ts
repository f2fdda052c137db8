/**
 * What Node.js itself spends to accept one TLS connection, with nothing of the gateway around it: a bare
 * `tls.createServer` that answers 11 bytes (the size of a MySQL OK packet) and closes, driven by 8 client loops
 * with resumption off and on. Its CPU per connection is the floor under the gateway's figures for new
 * connections, which add a backend connection and the MySQL handshake on top (compare target E of the bench
 * for the cost of the extra TCP connection).
 *
 *   npm run build && node dist/test/bench/node-tls-floor.js [--key-type rsa2048|ecdsa-p256] [--seconds 3]
 *
 * Same certificates (throwaway PKI, CN=localhost) and cipher preference (AES-128-GCM) as the gateway in the bench.
 * The server runs in its own process (this file re-executed with --serve) so its CPU is read from /proc.
 */
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { mintPki, type KeyType } from '../helpers/certs.js'
import { DEFAULT_CIPHERS } from '../../src/proxy/tls-material.js'
import { cpuTimes } from './procstat.js'

const CONCURRENCY = 8
const REPLY = Buffer.alloc(11)

function serve(cert: string, key: string): void {
  const server = tls.createServer(
    { cert: readFileSync(cert), key: readFileSync(key), ciphers: DEFAULT_CIPHERS, honorCipherOrder: true },
    (socket) => {
      socket.on('error', () => {})
      socket.end(REPLY)
    }
  )
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as { port: number }).port }))
  process.on('disconnect', () => process.exit(0))
}

async function load(port: number, ca: Buffer, resume: boolean, seconds: number): Promise<{ conns: number; resumed: number }> {
  let conns = 0
  let resumed = 0
  let session: Buffer | undefined
  const stopAt = Date.now() + seconds * 1000
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', session: resume ? session : undefined })
      const timer = setTimeout(() => s.destroy(new Error('no answer within 5 s')), 5_000)
      s.on('session', (x: Buffer) => (session = x))
      s.on('secureConnect', () => {
        if (s.isSessionReused()) resumed++
      })
      s.on('data', () => {})
      s.on('error', reject)
      s.on('close', () => {
        clearTimeout(timer)
        conns++
        resolve()
      })
    })
  const worker = async () => {
    while (Date.now() < stopAt) await once()
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return { conns, resumed }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const opt = (name: string) => {
    const i = args.indexOf(name)
    return i >= 0 ? args[i + 1] : undefined
  }
  const keyType = (opt('--key-type') ?? 'rsa2048') as KeyType
  if (keyType !== 'rsa2048' && keyType !== 'ecdsa-p256') throw new Error(`--key-type: rsa2048 or ecdsa-p256, not ${keyType}`)
  const seconds = Number(opt('--seconds') ?? 3)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-tls-floor-'))
  const server = { pid: 0, kill: () => {} }
  try {
    const pki = await mintPki(path.join(dir, 'pki'), { keyType })
    const child = fork(fileURLToPath(import.meta.url), ['--serve', pki.cert, pki.key], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    server.pid = child.pid!
    server.kill = () => child.kill()
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('TLS server did not start within 10 s')), 10_000)
      child.once('message', (m: { port: number }) => {
        clearTimeout(timer)
        resolve(m.port)
      })
      child.once('exit', (code) => reject(new Error(`TLS server exited with ${code}`)))
    })
    const ca = readFileSync(pki.caCert)
    await load(port, ca, true, 1) // warm-up, outside the window
    console.log(`Node.js ${process.version} TLS server alone, ${keyType}, ${CONCURRENCY} client loops, ${seconds} s per step`)
    for (const resume of [false, true, false, true]) {
      const before = cpuTimes(server.pid)!.self
      const r = await load(port, ca, resume, seconds)
      const cpu = cpuTimes(server.pid)!.self - before
      const rate = (r.conns / seconds).toFixed(0)
      const us = ((cpu / r.conns) * 1e6).toFixed(0)
      console.log(`${resume ? 'resumed' : 'full   '}  ${rate} conn/s  server CPU ${us} us/conn  (resumed ${r.resumed} of ${r.conns})`)
    }
  } finally {
    server.kill()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--serve') serve(process.argv[3]!, process.argv[4]!)
else
  main().catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
