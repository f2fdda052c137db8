/**
 * Test suite entry (`npm test`): mints a throwaway PKI, starts one shared TLS-enabled MariaDB,
 * runs `node --test` on the compiled tests with the harness environment, and always tears down.
 *
 *   node dist/test/run-tests.js                              # all *.test.js under dist/test/{unit,integration,e2e,regressions}
 *   node dist/test/run-tests.js dist/test/unit/foo.test.js   # one file; directories and test/...ts paths work too
 *   node dist/test/run-tests.js --test-name-pattern=tls dist/test/integration
 *
 * Arguments starting with `-` are passed to `node --test` after the defaults, so they win; give
 * them as `--flag=value` (a separate value would be taken for a test path).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { mintPki, type Pki } from './helpers/certs.js'
import { ENV } from './helpers/env.js'
import { startMariaDb, type MariaDbInstance } from './helpers/mariadb.js'
import { settledWithin } from './helpers/wait.js'

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const DIST_TEST = path.join(REPO_ROOT, 'dist', 'test')
const DEFAULT_DIRS = ['unit', 'integration', 'e2e', 'regressions']
const NODE_TEST_DEFAULTS = ['--test', '--test-concurrency=2', '--test-timeout=120000']
// The whole suite must finish in 10 minutes; past that the runner is stopped and the run fails.
const SUITE_BUDGET_MS = Number(process.env.GW_TEST_BUDGET_MS) || 600_000
const CHILD_GRACE_MS = 10_000

const log = (msg: string) => process.stderr.write(`[harness] ${msg}\n`)

let runner: ChildProcess | undefined
let interruptedBy: NodeJS.Signals | undefined
let budgetExpired = false

async function main(): Promise<number> {
  const { flags, targets } = parseArgs(process.argv.slice(2))
  let files: string[]
  try {
    files = targets.length > 0 ? expandTargets(targets) : expandTargets(defaultDirs(), true)
  } catch (err) {
    log((err as Error).message)
    return 1
  }
  if (files.length === 0) {
    // node --test with no files would scan the whole cwd instead; refuse rather than run something else.
    const where = (targets.length > 0 ? targets : defaultDirs()).join(', ')
    log(`no *.test.js files found (looked in ${where}); did the build run?`)
    return 1
  }

  const started = Date.now()
  const tmp = mkdtempSync(path.join(shortTmpBase(), 'gw-test-'))
  let db: MariaDbInstance | undefined
  try {
    const scratch = path.join(tmp, 'scratch')
    await mkdir(scratch)
    const minting = mintPki(path.join(tmp, 'pki'))
    db = await startMariaDb({
      baseDir: path.join(tmp, 'mariadb'),
      tls: minting.then((p) => ({ ca: p.caCert, cert: p.cert, key: p.key })),
    })
    const pki = await minting
    const [{ version }] = await db.query<Array<{ version: string }>>('SELECT VERSION() AS version')
    const readyMs = Date.now() - started
    log(`MariaDB ${version} (TLS) on 127.0.0.1:${db.port} ready in ${readyMs} ms; running ${files.length} test file(s)`)
    if (interruptedBy) return signalExitCode(interruptedBy)
    return await runNodeTest([...NODE_TEST_DEFAULTS, ...flags, ...files], childEnv(db, pki, scratch))
  } catch (err) {
    log(`harness failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    return 1
  } finally {
    await db?.stop()
    if (process.env.GW_TEST_KEEP_TMP === '1') log(`kept ${tmp}`)
    else await rm(tmp, { recursive: true, force: true, maxRetries: 3 })
  }
}

function parseArgs(argv: string[]) {
  const flags = argv.filter((a) => a.startsWith('-'))
  const targets = argv.filter((a) => !a.startsWith('-')).map(toCompiledPath)
  return { flags, targets }
}

/** Lets `test/unit/foo.test.ts` stand for its compiled `dist/test/unit/foo.test.js`. */
function toCompiledPath(target: string): string {
  const abs = path.resolve(target)
  const rel = path.relative(REPO_ROOT, abs)
  // The source tree holds no runnable tests, so any test/ path (file or directory) means dist/.
  if (rel === 'test' || rel.startsWith(`test${path.sep}`)) {
    return path.join(REPO_ROOT, 'dist', rel.replace(/\.ts$/, '.js'))
  }
  return abs
}

function defaultDirs(): string[] {
  return DEFAULT_DIRS.map((d) => path.join(DIST_TEST, d))
}

/** Node 20's `--test` takes no globs, so directories are expanded here, sorted for stable order. */
function expandTargets(targets: string[], skipMissing = false): string[] {
  const out: string[] = []
  for (const target of targets) {
    if (!existsSync(target)) {
      if (skipMissing) continue
      throw new Error(`no such test file or directory: ${target}`)
    }
    if (statSync(target).isDirectory()) out.push(...walk(target).sort())
    else out.push(target)
  }
  return out
}

function walk(dir: string): string[] {
  const found: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) found.push(...walk(full))
    else if (entry.isFile() && entry.name.endsWith('.test.js')) found.push(full)
  }
  return found
}

// mariadbd's socket lives under the temp dir and Unix socket paths max out near 108 bytes.
function shortTmpBase(): string {
  const base = os.tmpdir()
  return base.length <= 40 ? base : '/tmp'
}

function childEnv(db: MariaDbInstance, pki: Pki, scratch: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    [ENV.port]: String(db.port),
    [ENV.socket]: db.socketPath,
    [ENV.rootPassword]: db.rootPassword,
    [ENV.pkiDir]: pki.dir,
    [ENV.pki]: JSON.stringify(pki),
    [ENV.tmp]: scratch,
  }
}

function runNodeTest(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: 'inherit' })
    runner = child
    const budget = setTimeout(() => {
      budgetExpired = true
      log(`suite exceeded its ${SUITE_BUDGET_MS} ms budget; stopping the test runner`)
      stopRunner('SIGTERM')
    }, SUITE_BUDGET_MS)
    child.on('error', (err) => {
      clearTimeout(budget)
      log(`cannot start node --test: ${err.message}`)
      resolve(1)
    })
    child.on('exit', (code, signal) => {
      clearTimeout(budget)
      runner = undefined
      if (interruptedBy) resolve(signalExitCode(interruptedBy))
      // A runner stopped by the budget may still exit 0 after SIGTERM; the run failed regardless.
      else if (budgetExpired) resolve(1)
      else resolve(code ?? (signal ? signalExitCode(signal) : 1))
    })
  })
}

/** SIGTERM first so node --test can report; SIGKILL if it has not exited after a grace period. */
function stopRunner(signal: NodeJS.Signals) {
  const child = runner
  if (!child) return
  child.kill(signal)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  void settledWithin(exited, CHILD_GRACE_MS).then((done) => {
    if (!done) child.kill('SIGKILL')
  })
}

function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 1)
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interruptedBy) {
      // A second signal means "now": kill the runner outright; teardown still runs.
      runner?.kill('SIGKILL')
      return
    }
    interruptedBy = signal
    log(`${signal}: stopping tests, then MariaDB`)
    stopRunner(signal)
  })
}

// Exit explicitly: a handle leaked by a helper must not keep CI waiting after teardown.
process.exit(await main())
