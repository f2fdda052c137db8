/**
 * Entry point of the `gateway` binary (bin/gateway.js imports this file). Parses the command line, then
 * validates or runs. Output goes straight to stdout/stderr: it is meant for the operator at a terminal,
 * while the running gateway itself logs through pino.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { ConfigError, GatewayError } from '../errors.js'
import { createLogger } from '../log.js'
import { loadConfigFile } from '../config/load.js'
import { groupListeners, type GatewayConfig } from '../config/types.js'
import { EXIT, HELP, parseArgs, UsageError, type Command } from './args.js'
import { ensureDevCerts } from './dev-certs.js'

/** What ../supervisor/main.js exports (written separately; loaded lazily so `validate` never needs it). */
interface SupervisorModule {
  runSupervisor(opts: { configPath: string }): Promise<number>
}

const out = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
const err = (text: string): void => void process.stderr.write(text.endsWith('\n') ? text : `${text}\n`)

function version(): string {
  // package.json sits three levels above dist/src/cli/main.js.
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

function summary(file: string, config: GatewayConfig): string {
  const listeners = groupListeners(config.routes).length
  return `${file}: OK (${plural(config.routes.length, 'route')} on ${plural(listeners, 'listener')})`
}

/** Loads the config, printing every problem on failure. Returns undefined when invalid. */
async function load(file: string): Promise<GatewayConfig | undefined> {
  try {
    return await loadConfigFile(file)
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    for (const line of e.problems) err(line)
    return undefined
  }
}

async function execute(command: Exclude<Command, { kind: 'help' | 'version' }>): Promise<number> {
  if (command.devCerts) {
    await ensureDevCerts(command.configPath, createLogger({ level: 'info', base: { component: 'cli' } }))
  }
  const config = await load(command.configPath)
  if (!config) return EXIT.CONFIG
  if (command.kind === 'validate') {
    out(summary(command.configPath, config))
    return EXIT.OK
  }
  // Validated here first so an invalid file exits 3 before anything binds; the supervisor loads the file
  // itself (and again on every reload), from an absolute path so a later chdir cannot change its meaning.
  const url = new URL('../supervisor/main.js', import.meta.url).href
  let supervisor: SupervisorModule
  try {
    supervisor = (await import(url)) as SupervisorModule
  } catch (e) {
    err(`gateway: cannot load the supervisor (${(e as Error).message}); run \`npm run build\``)
    return EXIT.RUNTIME
  }
  return exitCodeOf(await supervisor.runSupervisor({ configPath: path.resolve(command.configPath) }))
}

/**
 * The supervisor reports sysexits-style codes (78 for a bad config at startup, 69 when no listener could
 * start); the CLI promises the small documented set, so they are folded into it here.
 */
const SYSEXITS_CONFIG = 78

function exitCodeOf(code: number): number {
  if (code === SYSEXITS_CONFIG) return EXIT.CONFIG
  const documented: number[] = Object.values(EXIT)
  return documented.includes(code) ? code : EXIT.RUNTIME
}

async function main(argv: readonly string[]): Promise<number> {
  let command: Command
  try {
    command = parseArgs(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    err(`gateway: ${e.message}\nTry 'gateway --help' for more information.`)
    return EXIT.USAGE
  }
  if (command.kind === 'help' || command.kind === 'version') {
    out(command.kind === 'help' ? HELP : version())
    return EXIT.OK
  }
  try {
    return await execute(command)
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const line of e.problems) err(line)
      return EXIT.CONFIG
    }
    const code = e instanceof GatewayError ? `${e.code}: ` : ''
    err(`gateway: ${code}${(e as Error)?.message ?? String(e)}`)
    return EXIT.RUNTIME
  }
}

// exitCode rather than process.exit(): pending stdout/stderr writes and pino's async logger still flush.
process.exitCode = await main(process.argv.slice(2))
