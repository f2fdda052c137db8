/**
 * Command line of the `gateway` binary. Pure: argv in, a Command out (or a UsageError), so it can be tested
 * without spawning anything.
 */
import { parseArgs as parseNodeArgs } from 'node:util'

/** Process exit codes, documented in --help and the README. */
export const EXIT = {
  /** Success; for `run`, a clean shutdown after SIGTERM/SIGINT. */
  OK: 0,
  /** The gateway failed at runtime (a port could not be bound, openssl missing for --dev-certs...). */
  RUNTIME: 1,
  /** The command line itself is wrong. */
  USAGE: 2,
  /** The configuration file is unreadable or invalid. */
  CONFIG: 3,
  /** A second SIGINT during the drain forced the exit (128 + signal number, as shells report it). */
  FORCED_SIGINT: 130,
  /** A second SIGTERM during the drain forced the exit. */
  FORCED_SIGTERM: 143,
} as const

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run' | 'validate'; configPath: string; devCerts: boolean }

/** A mistake on the command line (exit code 2). Kept out of the GW_ERR_* registry: it never leaves the CLI. */
export class UsageError extends Error {
  override name = 'UsageError'
}

export const HELP = `Usage:
  gateway [run] --config FILE [--dev-certs]       run the gateway until SIGTERM/SIGINT
  gateway validate --config FILE [--dev-certs]    check the file without starting anything (alias: check)
  gateway --help | --version

Options:
  -c, --config FILE   the YAML configuration file (reference: README, "Configuration reference")
      --dev-certs     first create a development CA (certs/dev-ca.crt next to FILE) and a localhost
                      certificate for every route whose tls.cert and tls.key files do not exist yet;
                      needs the openssl command; never overwrites an existing file
  -h, --help          show this help
      --version       print the version

Exit codes:
  0  success; for run, a clean shutdown after SIGTERM/SIGINT
  1  runtime failure (e.g. a listen address cannot be bound, --dev-certs cannot run openssl)
  2  usage error (unknown command or option, missing --config)
  3  invalid configuration; every problem is printed as "file:line:col key.path: message"
  130, 143  a second SIGINT or SIGTERM cut the drain short (128 + signal number)
`

const COMMANDS: Record<string, 'run' | 'validate'> = { run: 'run', validate: 'validate', check: 'validate' }

export function parseArgs(argv: readonly string[]): Command {
  // --help wins over everything else on the line, even a typo elsewhere: someone asking for help should
  // get it, not an error.
  if (argv.some((a) => a === '--help' || a === '-h')) return { kind: 'help' }
  let parsed
  try {
    parsed = parseNodeArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        'dev-certs': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    })
  } catch (err) {
    // node:util reports unknown options and missing option values as TypeErrors with ERR_PARSE_ARGS_* codes.
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  if (values.version) return { kind: 'version' }
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`)
  const word = positionals[0] ?? 'run'
  const kind = COMMANDS[word]
  if (!kind) throw new UsageError(`unknown command "${word}" (expected run or validate)`)
  if (values.config === undefined) throw new UsageError('missing --config FILE')
  if (values.config === '') throw new UsageError('--config needs a file name')
  return { kind, configPath: values.config, devCerts: values['dev-certs'] === true }
}
