/**
 * What `test/run-tests.ts` hands to every test process. Tests read it through `testEnv()`, which
 * throws when the harness did not run: a database test must fail without its database, never skip.
 */
import { mkdtempSync } from 'node:fs'
import path from 'node:path'
import type { Pki } from './certs.js'

export const ENV = {
  port: 'GW_TEST_MARIADB_PORT',
  socket: 'GW_TEST_MARIADB_SOCKET',
  rootPassword: 'GW_TEST_MARIADB_ROOT_PASSWORD',
  pkiDir: 'GW_TEST_PKI_DIR',
  pki: 'GW_TEST_PKI',
  tmp: 'GW_TEST_TMP',
} as const

export interface TestEnv {
  mariadb: {
    /** The harness server only listens on loopback. */
    host: '127.0.0.1'
    port: number
    socketPath: string
    user: 'root'
    rootPassword: string
  }
  pkiDir: string
  pki: Pki
  /** Per-run scratch directory, deleted by the harness. */
  tmp: string
}

/** Reads the harness variables from `source` (default `process.env`). */
export function testEnv(source: NodeJS.ProcessEnv = process.env): TestEnv {
  const missing = Object.values(ENV).filter((name) => !source[name])
  if (missing.length > 0) {
    throw new Error(
      `test harness environment missing (${missing.join(', ')}): run tests through the harness, ` +
        `e.g. \`npm test\` or \`node dist/test/run-tests.js dist/test/<dir>/<file>.test.js\``
    )
  }
  const port = Number(source[ENV.port])
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`${ENV.port} is not a TCP port: ${source[ENV.port]}`)
  }
  let pki: Pki
  try {
    pki = JSON.parse(source[ENV.pki]!) as Pki
  } catch (err) {
    throw new Error(`${ENV.pki} is not valid JSON`, { cause: err })
  }
  return {
    mariadb: {
      host: '127.0.0.1',
      port,
      socketPath: source[ENV.socket]!,
      user: 'root',
      rootPassword: source[ENV.rootPassword]!,
    },
    pkiDir: source[ENV.pkiDir]!,
    pki,
    tmp: source[ENV.tmp]!,
  }
}

/** A fresh directory under the run's scratch directory; the harness removes it at the end. */
export function tmpDir(prefix: string): string {
  return mkdtempSync(path.join(testEnv().tmp, `${prefix.replace(/[^A-Za-z0-9._-]/g, '_')}-`))
}
