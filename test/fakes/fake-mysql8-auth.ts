/**
 * Server side of MySQL 8's auth plugins for the fake server: mysql_native_password,
 * caching_sha2_password and sha256_password, each really checking the password.
 *
 * Behaviour follows mysql/mysql-server sql/auth/sha2_password.cc (caching_sha2_password_authenticate,
 * 8.0.5+) and sql/auth/sql_authentication.cc (sha256_password_authenticate,
 * native_password_authenticate, server_mpvio_write_packet): every byte a plugin sends after the
 * greeting/switch goes out as AuthMoreData (0x01 prefix), public keys included.
 */
import { createHash, privateDecrypt, constants, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { PacketChannel } from './fake-mysql8-wire.js'

export type AuthPluginName = 'caching_sha2_password' | 'sha256_password' | 'mysql_native_password'

export interface FakeAccount {
  user: string
  password: string
  plugin: AuthPluginName
  /** Like `REQUIRE SSL`: a correct password on a plain connection still gets ERR 1045. */
  requireSsl?: boolean
}

/** Events are test-visible; none carries a password, scramble or ciphertext. */
export type AuthEvent =
  | { kind: 'auth-switch'; user: string; from: string; to: string; freshScramble: boolean }
  | { kind: 'fast-auth'; user: string }
  | { kind: 'full-auth-required'; user: string; reason: 'not-cached' | 'scramble-mismatch' }
  | { kind: 'public-key-request'; user: string; plugin: AuthPluginName }
  | { kind: 'full-auth'; user: string; plugin: AuthPluginName; via: 'rsa' | 'clear-over-tls'; keyRequested: boolean }

export interface RsaKeys {
  publicPem: string
  privateKey: KeyObject
  /** Ciphertext length = modulus bytes; MySQL rejects any other length. */
  cipherLength: number
}

/** What a plugin run needs from the connection. */
export interface PluginIo {
  ch: PacketChannel
  /** TLS (MySQL's "secure vio": TLS, Unix socket, shared memory; here only TLS). */
  secure: boolean
  keys: RsaKeys
  /** Accounts whose SHA256(SHA256(password)) is in the caching_sha2 in-memory cache. */
  cache: Set<string>
  splitPemWrites: boolean
  readTimeoutMs: () => number
  record: (ev: AuthEvent) => void
}

export type PluginResult =
  | { ok: true; pending: Buffer[] }
  | { ok: false; passwordUsed: boolean; reason: string; pending: Buffer[] }

/** 20 random bytes as MySQL's generate_user_salt makes them: 7-bit, never NUL or '$'. */
export function newScramble(): Buffer {
  const s = randomBytes(20)
  for (let i = 0; i < s.length; i++) {
    s[i] &= 0x7f
    if (s[i] === 0 || s[i] === 0x24) s[i] += 1
  }
  return s
}

const sha1 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha1')
  for (const p of parts) h.update(p)
  return h.digest()
}

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i % b.length]
  return out
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** native: token = SHA1(pw) XOR SHA1(scramble || SHA1(SHA1(pw))); check SHA1(candidate) == stored. */
export function verifyNativeToken(password: string, scramble: Buffer, token: Buffer): boolean {
  if (token.length !== 20) return false
  const stored = sha1(sha1(Buffer.from(password, 'utf8')))
  return safeEqual(sha1(xor(token, sha1(scramble, stored))), stored)
}

/**
 * caching_sha2 fast path (Validate_scramble): token = SHA256(pw) XOR SHA256(stored || nonce) with
 * stored = SHA256(SHA256(pw)); check SHA256(candidate) == stored.
 */
export function verifySha2Token(password: string, scramble: Buffer, token: Buffer): boolean {
  if (token.length !== 32) return false
  const stored = sha256(sha256(Buffer.from(password, 'utf8')))
  return safeEqual(sha256(xor(token, sha256(stored, scramble))), stored)
}

/** RSA-OAEP(SHA-1) decrypt, XOR with the scramble repeated; the password ends at the first NUL. */
function decryptPassword(keys: RsaKeys, cipher: Buffer, scramble: Buffer): Buffer | null {
  let plain: Buffer
  try {
    plain = privateDecrypt({ key: keys.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, cipher)
  } catch {
    return null
  }
  const clear = xor(plain, scramble)
  const nul = clear.indexOf(0)
  return nul < 0 ? clear : clear.subarray(0, nul)
}

/** MySQL's CACHING_SHA2/SHA256 max plaintext password length. */
const MAX_PLAINTEXT_PASSWORD = 256

const moreData = (data: Buffer | number[]): Buffer => Buffer.concat([Buffer.from([0x01]), Buffer.from(data)])

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Sends `01`+PEM, optionally in small delayed writes so client readers see a split packet. */
async function sendPublicKey(io: PluginIo): Promise<void> {
  const framed = io.ch.frame(moreData(Buffer.from(io.keys.publicPem, 'ascii')))
  if (!io.splitPemWrites) {
    io.ch.writeRaw(framed)
    return
  }
  // Cut inside the header too: a reader that assumes a whole header per read breaks here.
  const cuts = [2, 5, 40, 41, 200]
  let prev = 0
  for (const cut of [...cuts.filter((c) => c < framed.length), framed.length]) {
    io.ch.writeRaw(framed.subarray(prev, cut))
    prev = cut
    if (cut < framed.length) await delay(15)
  }
}

const fail = (passwordUsed: boolean, reason: string, pending: Buffer[] = []): PluginResult => ({
  ok: false,
  passwordUsed,
  reason,
  pending,
})

/** `account` undefined = unknown user: the exchange runs normally and always fails (no user oracle). */
function passwordMatches(account: FakeAccount | undefined, candidate: Buffer): boolean {
  if (!account) return false
  return safeEqual(Buffer.from(account.password, 'utf8'), candidate)
}

export async function runNative(account: FakeAccount | undefined, resp: Buffer, scramble: Buffer): Promise<PluginResult> {
  if (resp.length === 0) {
    return account && account.password === '' ? { ok: true, pending: [] } : fail(false, 'empty response')
  }
  if (!account || account.password === '' || !verifyNativeToken(account.password, scramble, resp)) {
    return fail(true, 'native token mismatch')
  }
  return { ok: true, pending: [] }
}

export async function runCachingSha2(
  account: FakeAccount | undefined,
  user: string,
  resp: Buffer,
  scramble: Buffer,
  io: PluginIo,
): Promise<PluginResult> {
  // Empty password: nothing or a single NUL; accepted only if the account has no password.
  if (resp.length === 0 || (resp.length === 1 && resp[0] === 0)) {
    return account && account.password === '' ? { ok: true, pending: [] } : fail(false, 'empty response')
  }
  if (resp.length !== 32) return fail(true, `scramble response of ${resp.length} bytes`)

  const cached = account !== undefined && io.cache.has(account.user)
  if (cached && account && verifySha2Token(account.password, scramble, resp)) {
    io.record({ kind: 'fast-auth', user })
    // fast_auth_success; the caller sends the OK (in the same write unless oneReadFastAuth=false).
    return { ok: true, pending: [moreData([0x03])] }
  }
  io.record({ kind: 'full-auth-required', user, reason: cached ? 'scramble-mismatch' : 'not-cached' })
  io.ch.send(moreData([0x04])) // perform_full_authentication

  let pkt = await io.ch.read(io.readTimeoutMs())
  if (pkt.length === 0) return fail(true, 'empty packet after perform_full_authentication')
  let clear: Buffer | null
  if (io.secure) {
    io.record({ kind: 'full-auth', user, plugin: 'caching_sha2_password', via: 'clear-over-tls', keyRequested: false })
    // MySQL takes pkt_len-1 bytes: the client's trailing NUL is dropped, not checked.
    clear = pkt.subarray(0, pkt.length - 1)
  } else {
    let keyRequested = false
    if (pkt.length === 1 && pkt[0] === 0x02) {
      keyRequested = true
      io.record({ kind: 'public-key-request', user, plugin: 'caching_sha2_password' })
      await sendPublicKey(io)
      pkt = await io.ch.read(io.readTimeoutMs())
    }
    // On a plain connection anything but exactly key-length ciphertext is CR_ERROR, clear text included.
    if (pkt.length !== io.keys.cipherLength) {
      return fail(true, `plain connection: expected ${io.keys.cipherLength}-byte ciphertext, got ${pkt.length} bytes`)
    }
    io.record({ kind: 'full-auth', user, plugin: 'caching_sha2_password', via: 'rsa', keyRequested })
    clear = decryptPassword(io.keys, pkt, scramble)
    if (clear === null) return fail(true, 'RSA decryption failed')
    if (clear.length === 0) return fail(true, 'empty password in ciphertext')
  }
  if (clear.length > MAX_PLAINTEXT_PASSWORD || !passwordMatches(account, clear)) return fail(true, 'password mismatch')
  if (account && account.password !== '') io.cache.add(account.user)
  return { ok: true, pending: [] }
}

export async function runSha256(
  account: FakeAccount | undefined,
  user: string,
  resp: Buffer,
  scramble: Buffer,
  io: PluginIo,
): Promise<PluginResult> {
  // "an empty packet is a blank password" as well as a lone NUL (sha256_password_authenticate).
  if (resp.length === 0 || (resp.length === 1 && resp[0] === 0)) {
    return account && account.password === '' ? { ok: true, pending: [] } : fail(false, 'empty response')
  }
  let clear: Buffer | null
  if (io.secure) {
    io.record({ kind: 'full-auth', user, plugin: 'sha256_password', via: 'clear-over-tls', keyRequested: false })
    clear = resp.subarray(0, resp.length - 1)
  } else {
    let pkt = resp
    let keyRequested = false
    // sha256_password's key request is 0x01 (caching_sha2 uses 0x02).
    if (pkt.length === 1 && pkt[0] === 0x01) {
      keyRequested = true
      io.record({ kind: 'public-key-request', user, plugin: 'sha256_password' })
      await sendPublicKey(io)
      pkt = await io.ch.read(io.readTimeoutMs())
    }
    if (pkt.length !== io.keys.cipherLength) {
      return fail(true, `plain connection: expected ${io.keys.cipherLength}-byte ciphertext, got ${pkt.length} bytes`)
    }
    io.record({ kind: 'full-auth', user, plugin: 'sha256_password', via: 'rsa', keyRequested })
    clear = decryptPassword(io.keys, pkt, scramble)
    if (clear === null) return fail(true, 'RSA decryption failed')
    if (clear.length === 0) return fail(true, 'empty password in ciphertext')
  }
  if (clear.length > MAX_PLAINTEXT_PASSWORD) return fail(true, 'password too long')
  if (account && account.password === '') return fail(true, 'password sent to an account without one')
  return passwordMatches(account, clear) ? { ok: true, pending: [] } : fail(true, 'password mismatch')
}

export function runPlugin(
  plugin: AuthPluginName,
  account: FakeAccount | undefined,
  user: string,
  resp: Buffer,
  scramble: Buffer,
  io: PluginIo,
): Promise<PluginResult> {
  switch (plugin) {
    case 'mysql_native_password':
      return runNative(account, resp, scramble)
    case 'caching_sha2_password':
      return runCachingSha2(account, user, resp, scramble, io)
    case 'sha256_password':
      return runSha256(account, user, resp, scramble, io)
  }
}
