/**
 * A real, hermetic MariaDB for tests: its own datadir, socket and loopback port, started from the
 * installed binaries and torn down by PID. Never touches a system server (e.g. the one on :3306).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise'
import { freePort } from './cli.js'
import { testEnv, type TestEnv } from './env.js'
import { settledWithin } from './wait.js'

const execFileAsync = promisify(execFile)

export interface Queryable {
  query<T = any>(sql: string, params?: unknown[]): Promise<T>
}

/** Root access to a MariaDB over its Unix socket, plus what TCP clients need to reach it. */
export interface MariaDbClient extends Queryable {
  host: '127.0.0.1'
  port: number
  socketPath: string
  rootPassword: string
  /** `SHOW GLOBAL STATUS` value, e.g. `statusVar('Threads_connected')`; undefined if unknown. */
  statusVar(name: string): Promise<string | undefined>
  /** Closes the root pool (the server keeps running). */
  close(): Promise<void>
}

export interface MariaDbInstance extends MariaDbClient {
  pid: number
  datadir: string
  logFile: string
  /** SIGTERM, bounded wait, then SIGKILL. Safe to call twice. */
  stop(): Promise<void>
}

export interface TlsFiles {
  ca: string
  cert: string
  key: string
}

export interface StartMariaDbOptions {
  /** Owned by the caller; datadir, socket, pid and log files go inside. */
  baseDir: string
  /** A promise is accepted so certs can be minted while the datadir initialises. */
  tls?: TlsFiles | Promise<TlsFiles>
  /** Appended last, so they override the defaults below. */
  extraArgs?: string[]
  /** Defaults to a random one. */
  rootPassword?: string
  /** Deadline for the server to accept connections once the datadir exists (default 30 s). */
  startTimeoutMs?: number
}

export interface Account {
  user: string
  password: string
}

export interface AccountOptions {
  /** Name prefix; a random suffix makes every account unique across concurrent tests. */
  user?: string
  password?: string
  plugin?: 'native' | 'ed25519'
  requireSsl?: boolean
  host?: string
  /** Privileges to grant, e.g. `'SELECT ON *.*'`; default none beyond USAGE. */
  grant?: string
}

const START_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 20_000
const INSTALL_TIMEOUT_MS = 60_000
// Small redo log: 10.11's default 96 MiB per instance is wasted on throwaway datadirs. Both
// install-db and the server get it, otherwise the server rebuilds the log on first start.
const INNODB_LOG_FILE_SIZE = '--innodb-log-file-size=16M'
// sun_path is 108 bytes on Linux; mariadbd refuses longer socket paths.
const MAX_SOCKET_PATH = 100
const PORT_ATTEMPTS = 3

/** Root connections to the harness server of this test run (see `test/run-tests.ts`). */
export function harnessMariaDb(env: TestEnv = testEnv()): MariaDbClient {
  const { port, socketPath, rootPassword } = env.mariadb
  return makeClient(port, socketPath, rootPassword)
}

/** Initialises a datadir under `opts.baseDir` and starts mariadbd on a free 127.0.0.1 port. */
export async function startMariaDb(opts: StartMariaDbOptions): Promise<MariaDbInstance> {
  const baseDir = path.resolve(opts.baseDir)
  const datadir = path.join(baseDir, 'data')
  const socketPath = path.join(baseDir, 'mysqld.sock')
  const logFile = path.join(baseDir, 'mariadbd.err')
  if (socketPath.length > MAX_SOCKET_PATH) {
    throw new Error(`MariaDB socket path too long for a Unix socket (${socketPath.length} bytes): ${socketPath}`)
  }
  await mkdir(path.join(baseDir, 'tmp'), { recursive: true })
  // allSettled, not all: an early rejection must not leave install-db writing into a directory
  // the caller is about to delete.
  const prep = await Promise.allSettled([mariadbdPath(), pluginDirectory(), opts.tls, installDb(baseDir, datadir)])
  const failed = prep.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  const [server, pluginDir, tls] = prep.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    string,
    string,
    TlsFiles | undefined,
  ]
  const rootPassword = opts.rootPassword ?? randomBytes(18).toString('base64url')
  const deadline = Date.now() + (opts.startTimeoutMs ?? START_TIMEOUT_MS)

  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const args = [
      '--no-defaults', // must be first
      ...asRootArgs(),
      `--datadir=${datadir}`,
      `--tmpdir=${path.join(baseDir, 'tmp')}`,
      `--socket=${socketPath}`,
      `--pid-file=${path.join(baseDir, 'mariadbd.pid')}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--log-error=${logFile}`,
      `--plugin-dir=${pluginDir}`,
      '--plugin-load-add=auth_ed25519',
      '--max-allowed-packet=64M',
      '--max-connections=500',
      // Handshake-failure tests would otherwise get 127.0.0.1 host-blocked (ER_HOST_IS_BLOCKED).
      '--max-connect-errors=1000000',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_general_ci',
      INNODB_LOG_FILE_SIZE,
      // Throwaway data: skip the per-commit fsync that makes DDL-heavy setup slow.
      '--innodb-flush-log-at-trx-commit=0',
      ...(tls ? [`--ssl-ca=${tls.ca}`, `--ssl-cert=${tls.cert}`, `--ssl-key=${tls.key}`] : []),
      ...(opts.extraArgs ?? []),
    ]
    // Own process group: a terminal Ctrl-C reaches only the harness, which then stops the server
    // in order, instead of also signalling a mariadbd that may still be starting (see stopProcess).
    const child = spawn(server, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
    const exited = trackExit(child)
    try {
      const conn = await waitReady(socketPath, exited, deadline)
      try {
        await secureRoot(conn, rootPassword)
      } finally {
        await conn.end().catch(() => {})
      }
      const client = makeClient(port, socketPath, rootPassword)
      let stopping: Promise<void> | undefined
      return {
        ...client,
        pid: child.pid!,
        datadir,
        logFile,
        stop: () => (stopping ??= client.close().then(() => stopProcess(child, exited))),
      }
    } catch (err) {
      await stopProcess(child, exited, { graceful: false })
      const log = await tail(logFile)
      // freePort() cannot reserve the port; on a lost race pick another rather than fail the suite.
      if (attempt < PORT_ATTEMPTS && Date.now() < deadline && /already in use|Can't start server: Bind/i.test(log)) {
        continue
      }
      throw new Error(`MariaDB did not start: ${(err as Error).message}\n--- ${logFile} (tail) ---\n${log}`, {
        cause: err,
      })
    }
  }
}

/**
 * Creates a uniquely named account and returns its credentials. ed25519 accounts need the
 * auth_ed25519 plugin, which `startMariaDb` loads.
 */
export async function createAccount(db: Queryable, opts: AccountOptions = {}): Promise<Account> {
  const user = `${(opts.user ?? 'gw').slice(0, 20)}_${randomBytes(5).toString('hex')}`
  const password = opts.password ?? randomBytes(18).toString('base64url')
  const host = opts.host ?? '%'
  const auth = opts.plugin === 'ed25519' ? 'IDENTIFIED VIA ed25519 USING PASSWORD(?)' : 'IDENTIFIED BY ?'
  const tls = opts.requireSsl ? ' REQUIRE SSL' : ''
  await db.query(`CREATE USER ?@? ${auth}${tls}`, [user, host, password])
  if (opts.grant) await db.query(`GRANT ${opts.grant} TO ?@?`, [user, host])
  return { user, password }
}

function makeClient(port: number, socketPath: string, rootPassword: string): MariaDbClient {
  const pool = mysql.createPool({
    socketPath,
    user: 'root',
    password: rootPassword,
    connectionLimit: 4,
    connectTimeout: 10_000,
  })
  let closing: Promise<void> | undefined
  const query = async <T = any>(sql: string, params?: unknown[]): Promise<T> => {
    const [rows] = await pool.query(sql, params)
    return rows as T
  }
  return {
    host: '127.0.0.1',
    port,
    socketPath,
    rootPassword,
    query,
    async statusVar(name) {
      const rows = await query<Array<{ Value: string }>>('SHOW GLOBAL STATUS LIKE ?', [name])
      return rows[0]?.Value
    },
    close: () => (closing ??= settledWithin(pool.end(), 5_000).then(() => {})),
  }
}

type ExitInfo = { code: number | null; signal: NodeJS.Signals | null }

function trackExit(child: ChildProcess): Promise<ExitInfo> {
  // Drain stderr so a chatty server can never block on a full pipe; the log file has the detail.
  child.stderr?.resume()
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
    child.on('error', () => resolve({ code: null, signal: null }))
  })
}

// Retry only while the server is plainly still starting; anything else (bad auth, bad SQL) is a
// real failure and should surface at once (mysql2 `test/common.test.mts` does the same).
const STARTING = new Set(['ECONNREFUSED', 'ENOENT', 'PROTOCOL_CONNECTION_LOST', 'ECONNRESET'])

async function waitReady(socketPath: string, exited: Promise<ExitInfo>, deadline: number) {
  let state: ExitInfo | undefined
  void exited.then((s) => (state = s))
  let lastCode = 'none'
  while (Date.now() < deadline) {
    if (state) throw new Error(`mariadbd exited early (code ${state.code}, signal ${state.signal})`)
    try {
      return await mysql.createConnection({ socketPath, user: 'root', password: '', connectTimeout: 2_000 })
    } catch (err) {
      lastCode = String((err as { code?: unknown }).code)
      if (!STARTING.has(lastCode)) throw err
    }
    await sleep(50)
  }
  throw new Error(`mariadbd not accepting connections on ${socketPath} before the deadline (last: ${lastCode})`)
}

async function secureRoot(conn: Connection, password: string): Promise<void> {
  // install-db made root@{localhost,127.0.0.1,::1,<hostname>} without a password. Give them all
  // the known one, and add root@'%' so TCP clients coming through the gateway can log in too.
  const [anon] = await conn.query<RowDataPacket[]>("SELECT User AS user, Host AS host FROM mysql.user WHERE User = ''")
  for (const row of anon) await conn.query('DROP USER ?@?', [row.user, row.host])
  await conn.query("CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY ?", [password])
  await conn.query("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION")
  const [roots] = await conn.query<RowDataPacket[]>("SELECT Host AS host FROM mysql.user WHERE User = 'root'")
  for (const row of roots) await conn.query("ALTER USER 'root'@? IDENTIFIED BY ?", [row.host, password])
}

/**
 * NOTE: 10.11 can hang for good if SIGTERM arrives while it is still starting (seen here: socket
 * created, "ready for connections" never logged, SIGTERM ignored). So a server that never became
 * ready is SIGKILLed at once (its datadir is throwaway), and a ready one gets a bounded SIGTERM.
 */
async function stopProcess(child: ChildProcess, exited: Promise<ExitInfo>, { graceful = true } = {}): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  if (graceful) {
    child.kill('SIGTERM')
    if (await settledWithin(exited, STOP_TIMEOUT_MS)) return
  }
  child.kill('SIGKILL')
  await settledWithin(exited, 5_000)
}

async function installDb(baseDir: string, datadir: string): Promise<void> {
  const args = [
    '--no-defaults',
    ...asRootArgs(),
    `--datadir=${datadir}`,
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    INNODB_LOG_FILE_SIZE,
  ]
  try {
    await execFileAsync('mariadb-install-db', args, { cwd: baseDir, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 4 << 20 })
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    const out = `${e.stdout ?? ''}\n${e.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n')
    throw new Error(`mariadb-install-db failed: ${e.message}\n${out}`, { cause: err })
  }
}

// mariadbd refuses to run as root unless told --user=root, and rejects --user when not root.
function asRootArgs(): string[] {
  return process.getuid?.() === 0 ? ['--user=root'] : []
}

let cachedServer: Promise<string> | undefined
let cachedPluginDir: Promise<string> | undefined

function mariadbdPath(): Promise<string> {
  return (cachedServer ??= (async () => {
    // /usr/sbin is not on every PATH; prefer PATH so a custom build can be put first.
    for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin']) {
      if (dir && existsSync(path.join(dir, 'mariadbd'))) return path.join(dir, 'mariadbd')
    }
    throw new Error('mariadbd not found in PATH or /usr/sbin: run scripts/ensure-mariadb.sh')
  })())
}

function pluginDirectory(): Promise<string> {
  return (cachedPluginDir ??= (async () => {
    const { stdout } = await execFileAsync(await mariadbdPath(), ['--no-defaults', '--verbose', '--help'], {
      timeout: 15_000,
      maxBuffer: 8 << 20,
    })
    const dir = /^plugin-dir\s+(\S+)/m.exec(stdout)?.[1] ?? '/usr/lib/mysql/plugin'
    if (!existsSync(path.join(dir, 'auth_ed25519.so'))) {
      throw new Error(`auth_ed25519.so not found in ${dir}: install the MariaDB server package with its plugins`)
    }
    return dir
  })())
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}
