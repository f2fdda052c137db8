/** The `mariadb` command-line client (libmariadb) as a real-world client, and loopback ports. */
import { spawn } from 'node:child_process'
import net from 'node:net'

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  /** Written to stdin, which is then closed (the client otherwise waits for SQL on stdin). */
  input?: string
  /** Passed as MYSQL_PWD so it never appears in argv (`ps`) or in test output. */
  password?: string
  timeoutMs?: number
}

const DEFAULT_CLI_TIMEOUT_MS = 30_000

/**
 * Runs `mariadb --no-defaults ...args` and resolves with its exit code and output, whatever the
 * code. Rejects only if it cannot start or outlives `timeoutMs` (then it is SIGKILLed).
 */
export function runMariadbCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CLI_TIMEOUT_MS
  const env = { ...process.env }
  delete env.MYSQL_PWD
  if (opts.password !== undefined) env.MYSQL_PWD = opts.password
  // --no-defaults must come first: it keeps ~/.my.cnf and /etc/mysql from changing the test.
  const child = spawn('mariadb', ['--no-defaults', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
    // The client may exit before reading stdin (bad login); that EPIPE is not the test's failure.
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`cannot run mariadb client: ${err.message}`, { cause: err }))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (timedOut) {
        reject(new Error(`mariadb client still running after ${timeoutMs} ms; stderr: ${stderr.trim()}`))
      } else {
        resolve({ code, signal, stdout, stderr })
      }
    })
  })
}

/**
 * A TCP port that was free on 127.0.0.1 a moment ago. Another process can take it before the
 * caller binds, so prefer `listen(0)` where the code under test allows it.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}
