/** The gateway command line: commands, option spellings, and what counts as a usage error (exit 2). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { EXIT, HELP, parseArgs, UsageError } from '../../../src/cli/args.js'

test('run is the default command; -c, --config FILE and --config=FILE are the same', () => {
  const run = { kind: 'run', configPath: 'gw.yaml', devCerts: false }
  assert.deepEqual(parseArgs(['--config', 'gw.yaml']), run)
  assert.deepEqual(parseArgs(['-c', 'gw.yaml']), run)
  assert.deepEqual(parseArgs(['--config=gw.yaml']), run)
  assert.deepEqual(parseArgs(['run', '--config', 'gw.yaml']), run)
  assert.deepEqual(parseArgs(['--config', 'gw.yaml', 'run']), run)
})

test('validate (alias check) and --dev-certs', () => {
  assert.deepEqual(parseArgs(['validate', '-c', 'x.yaml']), { kind: 'validate', configPath: 'x.yaml', devCerts: false })
  assert.deepEqual(parseArgs(['check', '-c', 'x.yaml', '--dev-certs']), { kind: 'validate', configPath: 'x.yaml', devCerts: true })
  assert.deepEqual(parseArgs(['--dev-certs', '-c', 'x.yaml']), { kind: 'run', configPath: 'x.yaml', devCerts: true })
})

test('--help wins over everything; --version', () => {
  assert.deepEqual(parseArgs(['--help']), { kind: 'help' })
  assert.deepEqual(parseArgs(['validate', '-h', '--bogus']), { kind: 'help' })
  assert.deepEqual(parseArgs(['--version']), { kind: 'version' })
})

test('usage errors', () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /missing --config FILE/],
    [['validate'], /missing --config FILE/],
    [['--config'], /argument missing/],
    [['--config', ''], /--config needs a file name/],
    [['--bogus', '-c', 'x'], /Unknown option '--bogus'/],
    [['start', '-c', 'x'], /unknown command "start"/],
    [['validate', 'extra', '-c', 'x'], /unexpected argument "extra"/],
  ]
  for (const [argv, message] of cases) {
    assert.throws(() => parseArgs(argv), (err: unknown) => err instanceof UsageError && message.test(err.message), argv.join(' '))
  }
})

test('help documents every exit code', () => {
  for (const code of Object.values(EXIT)) assert.match(HELP, new RegExp(`\\b${code}\\b`), `exit code ${code}`)
})
