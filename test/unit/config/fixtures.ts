/**
 * Helpers for the config tests: a temp directory per test file, YAML written into it, and throwaway PEM
 * material minted with the openssl CLI (no expiring PEMs are committed). Local to the config tests on purpose.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { validateConfigFile } from '../../../src/config/load.js'

const run = promisify(execFile)
/** Bounds each openssl call; key generation takes well under a second. */
const OPENSSL_TIMEOUT_MS = 30_000

export async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd, timeout: OPENSSL_TIMEOUT_MS })
}

export interface Pem {
  /** CA certificate (PEM file path, absolute). */
  ca: string
  /** A leaf signed by `ca` and its key. */
  cert: string
  key: string
  /** A key that belongs to no certificate here: for mismatch tests. */
  otherKey: string
  /** `key`, encrypted with a passphrase. */
  encryptedKey: string
}

/** Mints a CA, a localhost leaf, an unrelated key and an encrypted key into `dir` (EC keys: fast). */
export async function mintPem(dir: string): Promise<Pem> {
  await mkdir(dir, { recursive: true })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test ca'], dir)
  await openssl(['req', '-new', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=localhost'], dir)
  await openssl(
    ['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '2', '-days', '2', '-out', 'leaf.crt'],
    dir
  )
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'other.key'], dir)
  await openssl(['pkey', '-in', 'leaf.key', '-aes256', '-passout', 'pass:test-only', '-out', 'encrypted.key'], dir)
  const at = (f: string): string => path.join(dir, f)
  return { ca: at('ca.crt'), cert: at('leaf.crt'), key: at('leaf.key'), otherKey: at('other.key'), encryptedKey: at('encrypted.key') }
}

export interface Workspace {
  dir: string
  pem: Pem
  /** Writes `name` (default config.yaml) into the workspace and returns its absolute path. */
  write(yaml: string, name?: string): Promise<string>
  /**
   * Writes the YAML and returns its problem lines without the "file:" prefix, so assertions read as
   * "line:col key.path: message". Throws if the file validates.
   */
  problems(yaml: string, name?: string): Promise<string[]>
  cleanup(): Promise<void>
}

export async function workspace(): Promise<Workspace> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gw-config-test-'))
  const pem = await mintPem(path.join(dir, 'pem'))
  let counter = 0
  const write = async (yaml: string, name?: string): Promise<string> => {
    const file = path.join(dir, name ?? `config-${++counter}.yaml`)
    await mkdir(path.dirname(file), { recursive: true })
    await writeFile(file, yaml)
    return file
  }
  return {
    dir,
    pem,
    write,
    async problems(yaml, name) {
      const file = await write(yaml, name)
      const result = await validateConfigFile(file)
      if (result.ok) throw new Error(`expected ${file} to be invalid, it validated`)
      return result.problems.map((line) => (line.startsWith(`${file}:`) ? line.slice(file.length + 1) : line))
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

/** YAML flow value for a path (JSON strings are valid YAML). */
export const q = (value: string): string => JSON.stringify(value)

/** A route block with working TLS material: `routeYaml(pem, { name: 'a', listen: '127.0.0.1:3307' })`. */
export function routeYaml(pem: Pem, opts: { name: string; listen: string; extra?: string[] }): string {
  const lines = [
    `  - name: ${opts.name}`,
    `    listen: ${q(opts.listen)}`,
    `    backend: 127.0.0.1:3306`,
    `    tls: { cert: ${q(pem.cert)}, key: ${q(pem.key)} }`,
    ...(opts.extra ?? []).map((l) => `    ${l}`),
  ]
  return lines.join('\n')
}
