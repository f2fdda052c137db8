/**
 * `--dev-certs`: makes the example configuration run on a fresh machine. For every route whose certificate
 * and key files are both missing, a localhost certificate is minted with the openssl command, signed by a
 * development CA kept next to the config file (certs/dev-ca.crt, certs/dev-ca.key) so clients can verify it.
 * Existing files are never overwritten, and nothing here prints key material.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { TlsLoadError } from '../errors.js'
import type { Logger } from '../log.js'

const run = promisify(execFile)

/** Key generation is the slow step (well under a second for RSA 2048); the bound only stops a hung openssl. */
const OPENSSL_TIMEOUT_MS = 30_000
/** Long enough not to bother a developer, short enough to be obviously not for production. */
const CA_DAYS = 3650
/** 825 days: the longest validity Apple platforms accept for a TLS server certificate. */
const LEAF_DAYS = 825

const CA_CONFIG = `[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = mysql-tls-gateway development CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
`

const LEAF_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`

interface Pair {
  cert: string
  key: string
}

/**
 * Finds the cert/key pairs to create. Reads the YAML leniently: a file that does not parse is left to the
 * validation that follows, which reports it properly.
 */
async function missingPairs(configPath: string, log: Logger): Promise<Pair[]> {
  let data: unknown
  try {
    data = parse(await readFile(configPath, 'utf8'), { merge: true })
  } catch {
    return []
  }
  const obj = (v: unknown): Record<string, unknown> =>
    v && typeof v === 'object' ? (v as Record<string, unknown>) : {}
  const root = obj(data)
  const defaultMode = obj(obj(root['defaults'])['tls'])['mode']
  const routes = Array.isArray(root['routes']) ? root['routes'] : []
  const dir = path.dirname(configPath)
  const pairs = new Map<string, Pair>()
  for (const route of routes) {
    const tls = obj(obj(route)['tls'])
    const mode = tls['mode'] ?? defaultMode ?? 'required'
    if (mode === 'disabled' || typeof tls['cert'] !== 'string' || typeof tls['key'] !== 'string') continue
    const pair = { cert: path.resolve(dir, tls['cert']), key: path.resolve(dir, tls['key']) }
    const [hasCert, hasKey] = [existsSync(pair.cert), existsSync(pair.key)]
    if (hasCert && hasKey) continue
    if (hasCert || hasKey) {
      // Half a pair is someone's real file; replacing the other half would produce a mismatched pair.
      const files = { certFile: pair.cert, keyFile: pair.key }
      log.warn(files, 'development certificate not created: half of the pair exists')
      continue
    }
    pairs.set(pair.cert, pair)
  }
  return [...pairs.values()]
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: OPENSSL_TIMEOUT_MS, windowsHide: true })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT') throw new TlsLoadError('--dev-certs needs the openssl command, which is not on PATH')
    // openssl's stderr names files and options; it never echoes key contents.
    const detail = (e.stderr ?? e.message).trim().split('\n').slice(0, 3).join('; ')
    throw new TlsLoadError(`openssl ${args[0]} failed: ${detail}`, { cause: err })
  }
}

/**
 * Generates into a private temporary directory beside the destination and renames into place, so a crash
 * never leaves a half-written key at the path the gateway reads.
 */
async function inTempDir<T>(near: string, fn: (tmp: string) => Promise<T>): Promise<T> {
  await mkdir(near, { recursive: true })
  const tmp = await mkdtemp(path.join(near, '.dev-certs-'))
  try {
    return await fn(tmp)
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

async function place(from: string, to: string, mode: number): Promise<void> {
  await chmod(from, mode)
  await mkdir(path.dirname(to), { recursive: true })
  await rename(from, to)
}

async function ensureCa(certsDir: string, log: Logger): Promise<Pair> {
  const ca = { cert: path.join(certsDir, 'dev-ca.crt'), key: path.join(certsDir, 'dev-ca.key') }
  const [hasCert, hasKey] = [existsSync(ca.cert), existsSync(ca.key)]
  if (hasCert && hasKey) return ca
  if (hasCert || hasKey) {
    throw new TlsLoadError(`only one of ${ca.cert} and ${ca.key} exists; remove it to let --dev-certs create a new CA`)
  }
  await inTempDir(certsDir, async (tmp) => {
    await writeFile(path.join(tmp, 'ca.cnf'), CA_CONFIG)
    const args = ['req', '-x509', '-new', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', String(CA_DAYS)]
    await openssl([...args, '-config', 'ca.cnf', '-keyout', 'ca.key', '-out', 'ca.crt'], tmp)
    await place(path.join(tmp, 'ca.key'), ca.key, 0o600)
    await place(path.join(tmp, 'ca.crt'), ca.cert, 0o644)
  })
  log.info({ certFile: ca.cert, keyFile: ca.key }, 'development ca created')
  return ca
}

async function createLeaf(pair: Pair, ca: Pair, log: Logger): Promise<void> {
  await inTempDir(path.dirname(pair.key), async (tmp) => {
    await writeFile(path.join(tmp, 'leaf.cnf'), LEAF_CONFIG)
    const req = ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-config', 'leaf.cnf']
    await openssl([...req, '-keyout', 'leaf.key', '-out', 'leaf.csr'], tmp)
    // A random positive 128-bit serial, so certificates re-minted after `rm` never repeat one (clients may
    // cache by issuer and serial). -set_serial also avoids openssl writing a dev-ca.srl file next to the CA.
    const serialBytes = randomBytes(16)
    serialBytes[0]! &= 0x7f
    const sign = ['x509', '-req', '-in', 'leaf.csr', '-CA', ca.cert, '-CAkey', ca.key, '-sha256']
    const opts = ['-set_serial', `0x${serialBytes.toString('hex')}`, '-days', String(LEAF_DAYS)]
    await openssl([...sign, ...opts, '-extfile', 'leaf.cnf', '-extensions', 'v3_leaf', '-out', 'leaf.crt'], tmp)
    await place(path.join(tmp, 'leaf.key'), pair.key, 0o600)
    await place(path.join(tmp, 'leaf.crt'), pair.cert, 0o644)
  })
  log.info({ certFile: pair.cert, keyFile: pair.key, caFile: ca.cert }, 'development certificate created for localhost')
}

/**
 * Creates what is missing; returns the certificate paths created. Throws TlsLoadError (GW_ERR_CERT_LOAD)
 * when openssl is unavailable or fails.
 * @param configPath the configuration file; relative paths in it are relative to its directory.
 */
export async function ensureDevCerts(configPath: string, log: Logger): Promise<string[]> {
  const pairs = await missingPairs(path.resolve(configPath), log)
  if (pairs.length === 0) return []
  const ca = await ensureCa(path.join(path.dirname(path.resolve(configPath)), 'certs'), log)
  for (const pair of pairs) await createLeaf(pair, ca, log)
  return pairs.map((p) => p.cert)
}
