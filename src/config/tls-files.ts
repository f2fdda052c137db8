/**
 * Certificate, key and CA checks done at validation time, so a broken file is reported with the line that
 * names it instead of failing a proxy process later. Messages name files, never their contents.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { open } from 'node:fs/promises'
import tls from 'node:tls'
import type { FileRef, RouteDraft } from './normalize.js'
import type { Problems } from './positions.js'

/**
 * PEM files are a few kilobytes; a CA bundle of every public root is about 250 KiB. The cap keeps a path
 * that points at something else (a log file, /dev/zero) from being read without end.
 */
export const MAX_PEM_BYTES = 1024 * 1024

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

type ReadResult = { ok: true; text: string } | { ok: false; message: string }

const ERRNO_WORDS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a parent is not a directory',
  ELOOP: 'too many symbolic links',
}

function cannotRead(file: string, err: unknown): ReadResult {
  const code = (err as NodeJS.ErrnoException).code ?? 'error'
  return { ok: false, message: `cannot read ${file}: ${ERRNO_WORDS[code] ?? 'read failed'} (${code})` }
}

async function readPem(file: string): Promise<ReadResult> {
  let handle
  try {
    handle = await open(file, 'r')
  } catch (err) {
    return cannotRead(file, err)
  }
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) return { ok: false, message: `${file} is not a regular file` }
    if (stat.size > MAX_PEM_BYTES) return { ok: false, message: `${file} is larger than 1 MiB; is it a PEM file?` }
    return { ok: true, text: await handle.readFile('utf8') }
  } catch (err) {
    return cannotRead(file, err)
  } finally {
    await handle.close()
  }
}

/** Parses every certificate of a PEM bundle; returns them or a problem message. */
function parseCertificates(file: string, text: string): X509Certificate[] | string {
  const blocks = text.match(PEM_CERT) ?? []
  if (blocks.length === 0) return `${file} contains no PEM certificate (-----BEGIN CERTIFICATE-----)`
  const certs: X509Certificate[] = []
  for (const [i, block] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(block))
    } catch {
      return `certificate ${i + 1} of ${blocks.length} in ${file} does not parse`
    }
  }
  return certs
}

/** PKCS#8 ("ENCRYPTED PRIVATE KEY") and legacy OpenSSL ("Proc-Type: 4,ENCRYPTED") encrypted PEM keys. */
const ENCRYPTED_PEM = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/

function parseKey(file: string, text: string): KeyObject | string {
  // The gateway restarts unattended, so it has nowhere to get a passphrase from.
  const encrypted =
    `${file} is an encrypted private key; the gateway needs it unencrypted (protect it with file permissions)`
  if (ENCRYPTED_PEM.test(text)) return encrypted
  try {
    return createPrivateKey(text)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE') return encrypted
    return `${file} contains no usable PEM private key`
  }
}

/** Reads and checks every cert, key and CA file of the routes, adding one problem per broken reference. */
export async function checkTlsFiles(drafts: readonly RouteDraft[], problems: Problems): Promise<void> {
  const refs: FileRef[] = drafts.flatMap((d) => [...(d.certKey ? [d.certKey.cert, d.certKey.key] : []), ...d.cas])
  // Each file is read once even when many routes (or defaults) point at it.
  const files = new Map<string, Promise<ReadResult>>()
  for (const ref of refs) if (!files.has(ref.file)) files.set(ref.file, readPem(ref.file))
  const read = new Map<string, ReadResult>()
  for (const [file, pending] of files) read.set(file, await pending)

  const certOf = (ref: FileRef): X509Certificate | undefined => {
    const result = read.get(ref.file)!
    if (!result.ok) return void problems.add(ref.at, result.message)
    const parsed = parseCertificates(ref.file, result.text)
    if (typeof parsed === 'string') return void problems.add(ref.at, parsed)
    return parsed[0]
  }

  for (const draft of drafts) {
    for (const ca of draft.cas) certOf(ca)
    if (!draft.certKey) continue
    const { cert, key } = draft.certKey
    const leaf = certOf(cert)
    const keyText = read.get(key.file)!
    if (!keyText.ok) {
      problems.add(key.at, keyText.message)
      continue
    }
    const privateKey = parseKey(key.file, keyText.text)
    if (typeof privateKey === 'string') {
      problems.add(key.at, privateKey)
      continue
    }
    // The first certificate of the chain is the one clients see; it is the one the key must belong to.
    if (leaf && !leaf.checkPrivateKey(privateKey)) {
      const subject = leaf.subject.replace(/\n/g, ', ')
      problems.add(key.at, `does not match the certificate in ${cert.file} (subject ${subject})`)
    }
  }
}

/**
 * An OpenSSL cipher list that matches nothing is only detected when a TLS context is built; building one
 * here reports it against the key that sets it.
 */
export function checkCiphers(drafts: readonly RouteDraft[], problems: Problems): void {
  for (const draft of drafts) {
    const ciphers = draft.route.tls.ciphers
    const at = draft.origin('tls', 'ciphers')
    if (ciphers === undefined || !at) continue
    try {
      tls.createSecureContext({ ciphers })
    } catch {
      problems.add(at, `no cipher matches "${ciphers}" in this OpenSSL build`)
    }
  }
}
