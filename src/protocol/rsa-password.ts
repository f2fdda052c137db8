/**
 * The RSA step of caching_sha2_password / sha256_password full authentication, done by the gateway when the
 * client sent its password in clear over TLS and the backend leg is plain (as MySQL Router does):
 * ciphertext = RSA-OAEP(SHA-1, MGF1-SHA1) of (password + NUL) XOR scramble repeated.
 * Pure computation, no I/O.
 */
import { constants, publicEncrypt, createPublicKey } from 'node:crypto'

/** XOR of password+NUL with the 20-byte scramble repeated over its length. */
export function xorWithScramble(passwordWithNul: Buffer, scramble: Buffer): Buffer {
  const out = Buffer.allocUnsafe(passwordWithNul.length)
  for (let i = 0; i < passwordWithNul.length; i++) out[i] = passwordWithNul[i]! ^ scramble[i % scramble.length]!
  return out
}

/**
 * Encrypts for the backend. `clearResponse` is what the client sent: the password followed by one NUL.
 * Throws RangeError when the password is too long for the key (OAEP-SHA1 leaves keyBytes - 42 bytes).
 */
export function encryptPassword(clearResponse: Buffer, scramble: Buffer, publicKeyPem: string | Buffer): Buffer {
  const withNul = clearResponse[clearResponse.length - 1] === 0 ? clearResponse : Buffer.concat([clearResponse, Buffer.from([0])])
  const key = createPublicKey(publicKeyPem)
  const keyBytes = Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 2048) / 8)
  if (withNul.length > keyBytes - 42) throw new RangeError(`password too long for a ${keyBytes * 8}-bit RSA key`)
  return publicEncrypt(
    { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
    xorWithScramble(withNul, scramble.subarray(0, 20))
  )
}
