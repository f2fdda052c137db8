import assert from 'node:assert/strict'
import { constants, generateKeyPairSync, privateDecrypt, publicEncrypt, type KeyObject } from 'node:crypto'
import { describe, test } from 'node:test'
import { encryptPassword, xorWithScramble } from '../../../src/protocol/rsa-password.js'
import { MYSQL8_SCRAMBLE } from '../../fixtures/protocol/fixtures.js'

// Key generation is the slow part: one key per size for the whole file.
const keys = new Map<number, { publicPem: string; privateKey: KeyObject }>()
function keyPair(bits: number) {
  let pair = keys.get(bits)
  if (!pair) {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits })
    pair = { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey }
    keys.set(bits, pair)
  }
  return pair
}

/** What the server does (MySQL sql/auth/sha2_password.cc): OAEP-SHA1 decrypt, then XOR with the scramble. */
function decrypt(ciphertext: Buffer, privateKey: KeyObject): Buffer {
  return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, ciphertext)
}

/** Reference XOR written out here: byte i of password+NUL with scramble[i mod 20]. */
function expectedPlaintext(password: Buffer, scramble: Buffer): Buffer {
  const withNul = Buffer.concat([password, Buffer.from([0])])
  return Buffer.from(withNul.map((b, i) => b ^ scramble[i % 20]!))
}

describe('encryptPassword', () => {
  test('decrypts with the private key to (password + NUL) XOR scramble, and back to the password', () => {
    const { publicPem, privateKey } = keyPair(2048)
    const password = Buffer.from('s3cret-pässword')
    const ciphertext = encryptPassword(Buffer.concat([password, Buffer.from([0])]), MYSQL8_SCRAMBLE, publicPem)
    assert.equal(ciphertext.length, 256, 'RSA-2048 ciphertext is 256 bytes')
    const plain = decrypt(ciphertext, privateKey)
    assert.deepEqual(plain, expectedPlaintext(password, MYSQL8_SCRAMBLE))
    assert.deepEqual(xorWithScramble(plain, MYSQL8_SCRAMBLE), Buffer.concat([password, Buffer.from([0])]))
  })

  test('the NUL is added when the caller passes the bare password; PEM as a Buffer works too', () => {
    const { publicPem, privateKey } = keyPair(2048)
    const password = Buffer.from('no-terminator')
    const plain = decrypt(encryptPassword(password, MYSQL8_SCRAMBLE, Buffer.from(publicPem)), privateKey)
    assert.deepEqual(plain, expectedPlaintext(password, MYSQL8_SCRAMBLE))
  })

  test('an empty password encrypts one NUL XOR scramble[0]', () => {
    const { publicPem, privateKey } = keyPair(2048)
    assert.deepEqual(decrypt(encryptPassword(Buffer.alloc(0), MYSQL8_SCRAMBLE, publicPem), privateKey), Buffer.from([MYSQL8_SCRAMBLE[0]!]))
  })

  test('a password longer than 20 bytes cycles the scramble', () => {
    const { publicPem, privateKey } = keyPair(2048)
    const password = Buffer.from('correct horse battery staple, twice: correct horse') // 50 bytes
    const plain = decrypt(encryptPassword(password, MYSQL8_SCRAMBLE, publicPem), privateKey)
    assert.equal(plain.length, password.length + 1)
    for (let i = 20; i < plain.length; i++) {
      const pwByte = i < password.length ? password[i]! : 0
      assert.equal(plain[i], pwByte ^ MYSQL8_SCRAMBLE[i - 20 * Math.floor(i / 20)]!, `byte ${i}`)
    }
    assert.deepEqual(plain, expectedPlaintext(password, MYSQL8_SCRAMBLE))
  })

  test('a 21-byte scramble (with its NUL) uses only the first 20 bytes', () => {
    const { publicPem, privateKey } = keyPair(2048)
    const password = Buffer.from('x'.repeat(30))
    const withNul = Buffer.concat([MYSQL8_SCRAMBLE, Buffer.from([0])])
    assert.deepEqual(decrypt(encryptPassword(password, withNul, publicPem), privateKey), expectedPlaintext(password, MYSQL8_SCRAMBLE))
  })

  for (const bits of [1024, 2048]) {
    const keyBytes = bits / 8
    const longest = keyBytes - 42 - 1 // OAEP-SHA1 fits keyBytes - 2*20 - 2 bytes; one of them is the NUL
    test(`RSA-${bits}: a ${longest}-byte password (+ NUL = keyBytes - 42) passes, ${longest + 1} throws RangeError`, () => {
      const { publicPem, privateKey } = keyPair(bits)
      const fits = Buffer.alloc(longest, 'p')
      assert.deepEqual(decrypt(encryptPassword(fits, MYSQL8_SCRAMBLE, publicPem), privateKey), expectedPlaintext(fits, MYSQL8_SCRAMBLE))
      const tooLong = Buffer.alloc(longest + 1, 'p')
      assert.throws(() => encryptPassword(tooLong, MYSQL8_SCRAMBLE, publicPem), RangeError)
      // Same limits with the NUL already present.
      assert.doesNotThrow(() => encryptPassword(Buffer.concat([fits, Buffer.from([0])]), MYSQL8_SCRAMBLE, publicPem))
      assert.throws(() => encryptPassword(Buffer.concat([tooLong, Buffer.from([0])]), MYSQL8_SCRAMBLE, publicPem), RangeError)
      // The cap is OpenSSL's real OAEP limit, not an arbitrary one: one byte more fails in OpenSSL itself.
      const oaep = { key: publicPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }
      assert.doesNotThrow(() => publicEncrypt(oaep, Buffer.alloc(keyBytes - 42)))
      assert.throws(() => publicEncrypt(oaep, Buffer.alloc(keyBytes - 41)))
    })
  }

  test('RSA-2048: 213-byte password fits, 214-byte password is rejected (notes §4.3, checklist 14)', () => {
    const { publicPem } = keyPair(2048)
    assert.equal(encryptPassword(Buffer.alloc(213, 'a'), MYSQL8_SCRAMBLE, publicPem).length, 256)
    assert.throws(() => encryptPassword(Buffer.alloc(214, 'a'), MYSQL8_SCRAMBLE, publicPem), RangeError)
  })

  test('OAEP is randomised: two encryptions differ but decrypt the same', () => {
    const { publicPem, privateKey } = keyPair(2048)
    const a = encryptPassword(Buffer.from('pw'), MYSQL8_SCRAMBLE, publicPem)
    const b = encryptPassword(Buffer.from('pw'), MYSQL8_SCRAMBLE, publicPem)
    assert.notDeepEqual(a, b)
    assert.deepEqual(decrypt(a, privateKey), decrypt(b, privateKey))
  })

  test('not a public key: throws', () => {
    assert.throws(() => encryptPassword(Buffer.from('pw'), MYSQL8_SCRAMBLE, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'))
  })
})

describe('xorWithScramble', () => {
  test('byte-wise XOR with the scramble repeated, same length as the input', () => {
    const scramble = Buffer.from(Array.from({ length: 20 }, (_, i) => i + 1))
    const input = Buffer.alloc(45, 0xff)
    const out = xorWithScramble(input, scramble)
    assert.equal(out.length, 45)
    for (let i = 0; i < 45; i++) assert.equal(out[i], 0xff ^ ((i % 20) + 1), `byte ${i}`)
    assert.deepEqual(xorWithScramble(out, scramble), input)
  })
})
