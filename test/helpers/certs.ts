/**
 * Throwaway PKI for tests, minted per run with the openssl CLI so no expiring PEMs are committed
 * (ghostunnel `RootCert`, node-postgres `test/tls/GNUmakefile`).
 *
 * Everything returned is a plain object of absolute paths so it can travel to test processes as
 * JSON (`GW_TEST_PKI`) and `mintLeaf` still works there.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export type KeyType = 'rsa2048' | 'ecdsa-p256'

export interface Pki {
  dir: string
  keyType: KeyType
  /** CA that signs the server cert and, by default, every leaf. */
  caCert: string
  caKey: string
  /** Server cert for CN=localhost, SANs DNS:localhost, IP:127.0.0.1 (+ extraSans). */
  cert: string
  key: string
  /** An unrelated CA nobody trusts: for "untrusted client/server cert" tests. */
  otherCaCert: string
  otherCaKey: string
}

export interface Leaf {
  name: string
  cert: string
  key: string
  /** The CA cert that signed this leaf. */
  issuerCert: string
}

export interface MintPkiOptions {
  keyType?: KeyType
  /** Additional SANs for the localhost server cert: `DNS:x`, `IP:y`, or a bare name/IP. */
  extraSans?: string[]
}

export interface MintLeafOptions {
  /** SANs as `DNS:x`, `IP:y` or bare names/IPs; defaults to `name` for server certs. */
  sans?: string[]
  /** Client certificate (extendedKeyUsage clientAuth) instead of a server one. */
  client?: boolean
  keyType?: KeyType
  /** `other` signs with the unrelated CA, producing a cert the harness CA does not trust. */
  signer?: 'ca' | 'other'
  /** Where to write; defaults to the PKI directory. */
  dir?: string
  days?: number
}

// Short validity: these only live for one run, and a short life keeps leaked files harmless.
const DEFAULT_DAYS = 7
const OPENSSL_TIMEOUT_MS = 30_000

/** Mints a CA, a localhost server cert and an unrelated second CA into `dir`. */
export async function mintPki(dir: string, opts: MintPkiOptions = {}): Promise<Pki> {
  const abs = path.resolve(dir)
  await mkdir(abs, { recursive: true, mode: 0o700 })
  const keyType = opts.keyType ?? 'rsa2048'
  const [ca, other] = await Promise.all([
    mintCa(abs, 'ca', 'gateway test CA', keyType),
    mintCa(abs, 'other-ca', 'unrelated test CA', keyType),
  ])
  const pkiBase = { dir: abs, keyType, caCert: ca.cert, caKey: ca.key, otherCaCert: other.cert, otherCaKey: other.key }
  const server = await signLeaf(pkiBase, {
    base: path.join(abs, 'server'),
    cn: 'localhost',
    sans: ['DNS:localhost', 'IP:127.0.0.1', ...(opts.extraSans ?? [])],
    client: false,
    keyType,
    signer: 'ca',
    days: DEFAULT_DAYS,
  })
  return { ...pkiBase, cert: server.cert, key: server.key }
}

/**
 * Mints one more leaf: tenant server certs (`mintLeaf(pki, 'tenant-a.db.test')`) or client certs
 * for mutual TLS (`{ client: true }`). File names get a random suffix so concurrent test files can
 * reuse the same `name` in the shared PKI directory.
 */
export async function mintLeaf(pki: Pki, name: string, opts: MintLeafOptions = {}): Promise<Leaf> {
  const client = opts.client ?? false
  const dir = path.resolve(opts.dir ?? pki.dir)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_')
  const base = path.join(dir, `${safe}-${randomBytes(4).toString('hex')}`)
  const sans = opts.sans ?? (client ? [] : [name])
  const signer = opts.signer ?? 'ca'
  const files = await signLeaf(pki, {
    base,
    cn: name,
    sans,
    client,
    keyType: opts.keyType ?? pki.keyType,
    signer,
    days: opts.days ?? DEFAULT_DAYS,
  })
  return { name, ...files, issuerCert: signer === 'ca' ? pki.caCert : pki.otherCaCert }
}

async function openssl(args: string[]): Promise<void> {
  try {
    // stdout is ignored: every command writes its output to files, so no key material
    // passes through this process or ends up in an error message.
    await execFileAsync('openssl', args, { timeout: OPENSSL_TIMEOUT_MS, maxBuffer: 1024 * 1024 })
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err })
  }
}

async function genKey(file: string, keyType: KeyType): Promise<void> {
  const algo =
    keyType === 'rsa2048'
      ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']
      : ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
  await openssl(['genpkey', ...algo, '-out', file])
  await chmod(file, 0o600)
}

async function mintCa(dir: string, base: string, cn: string, keyType: KeyType) {
  const key = path.join(dir, `${base}.key`)
  const cert = path.join(dir, `${base}.crt`)
  await genKey(key, keyType)
  await openssl([
    'req', '-x509', '-new', '-key', key, '-out', cert,
    '-subj', `/O=mysql-tls-gateway tests/CN=${cn} ${randomBytes(3).toString('hex')}`,
    '-days', String(DEFAULT_DAYS),
    '-set_serial', serial(),
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash',
  ])
  return { cert, key }
}

interface SignSpec {
  base: string
  cn: string
  sans: string[]
  client: boolean
  keyType: KeyType
  signer: 'ca' | 'other'
  days: number
}

type CaPaths = Pick<Pki, 'caCert' | 'caKey' | 'otherCaCert' | 'otherCaKey'>

async function signLeaf(pki: CaPaths, spec: SignSpec): Promise<{ cert: string; key: string }> {
  const key = `${spec.base}.key`
  const cert = `${spec.base}.crt`
  const csr = `${spec.base}.csr`
  const ext = `${spec.base}.ext`
  const [caCert, caKey] = spec.signer === 'ca' ? [pki.caCert, pki.caKey] : [pki.otherCaCert, pki.otherCaKey]
  // RSA key exchange needs keyEncipherment; ECDSA keys only sign.
  const usage = spec.keyType === 'rsa2048' ? 'digitalSignature,keyEncipherment' : 'digitalSignature'
  const lines = [
    '[v3]',
    'basicConstraints=critical,CA:FALSE',
    `keyUsage=critical,${usage}`,
    `extendedKeyUsage=${spec.client ? 'clientAuth' : 'serverAuth'}`,
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid,issuer',
  ]
  if (spec.sans.length > 0) lines.push(`subjectAltName=${spec.sans.map(normalizeSan).join(',')}`)
  await Promise.all([writeFile(ext, lines.join('\n') + '\n'), genKey(key, spec.keyType)])
  try {
    await openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${spec.cn}`])
    await openssl([
      'x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-out', cert,
      '-set_serial', serial(), '-days', String(spec.days), '-extfile', ext, '-extensions', 'v3',
    ])
  } finally {
    await Promise.all([rm(csr, { force: true }), rm(ext, { force: true })])
  }
  return { cert, key }
}

function normalizeSan(san: string): string {
  if (/^(DNS|IP|email|URI):/.test(san)) return san
  return isIP(san) ? `IP:${san}` : `DNS:${san}`
}

// Random serials so two certs from one run never share issuer+serial (clients cache by it).
function serial(): string {
  const bytes = randomBytes(9)
  bytes[0] = bytes[0] & 0x7f
  return `0x${bytes.toString('hex')}`
}
