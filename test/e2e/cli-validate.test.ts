/**
 * The built CLI, spawned as an operator runs it: `gateway validate` on good and bad files, --help,
 * --version, usage errors. Nothing here binds a port or needs the MariaDB harness.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { routeYaml, workspace, type Workspace } from '../unit/config/fixtures.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const BIN = path.join(ROOT, 'bin', 'gateway.js')
/** Validation takes well under a second; the bound only turns a hang into a failure. */
const CLI_TIMEOUT_MS = 20_000

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

function gateway(args: string[], cwd = ROOT): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, timeout: CLI_TIMEOUT_MS }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null) : 0
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr })
    })
  })
}

let ws: Workspace
before(async () => {
  ws = await workspace()
})
after(() => ws.cleanup())

describe('gateway validate', () => {
  test('a valid file: one OK line on stdout, exit 0', async () => {
    const yaml = [
      'routes:',
      routeYaml(ws.pem, { name: 'a', listen: '127.0.0.1:3307', extra: ['serverNames: [a.example.com]'] }),
      routeYaml(ws.pem, { name: 'b', listen: '127.0.0.1:3307', extra: ['serverNames: [b.example.com]'] }),
      routeYaml(ws.pem, { name: 'c', listen: '127.0.0.1:3308' }),
      '',
    ].join('\n')
    await ws.write(yaml, 'good.yaml')
    const result = await gateway(['validate', '--config', 'good.yaml'], ws.dir)
    assert.deepEqual(result, { code: 0, stdout: 'good.yaml: OK (3 routes on 2 listeners)\n', stderr: '' })
  })

  test('an invalid file: every problem on stderr with file:line:col key.path, exit 3', async () => {
    const yaml = [
      'log: { level: loud }',
      'routes:',
      routeYaml(ws.pem, { name: 'a', listen: '127.0.0.1:3307' }),
      '  - name: b',
      '    listen: 127.0.0.1:3308',
      '    backend: 127.0.0.1:3306',
      '    tls: { mode: sometimes }',
      '',
    ].join('\n')
    await ws.write(yaml, 'bad.yaml')
    const result = await gateway(['validate', '-c', 'bad.yaml'], ws.dir)
    assert.equal(result.code, 3)
    assert.equal(result.stdout, '')
    assert.deepEqual(result.stderr.trimEnd().split('\n'), [
      'bad.yaml:1:15 log.level: must be one of trace, debug, info, warn, error',
      'bad.yaml:10:18 routes[1].tls.mode: must be one of required, preferred, disabled',
    ])
  })

  test('cross-route problems are listed too', async () => {
    const yaml = ['routes:', routeYaml(ws.pem, { name: 'a', listen: '127.0.0.1:3307' }), routeYaml(ws.pem, { name: 'a', listen: '127.0.0.1:3307' }), ''].join('\n')
    await ws.write(yaml, 'dup.yaml')
    const result = await gateway(['check', '--config=dup.yaml'], ws.dir)
    assert.equal(result.code, 3)
    assert.deepEqual(result.stderr.trimEnd().split('\n'), [
      'dup.yaml:6:11 routes[1].name: duplicate route name, also used by routes[0] "a" (line 2)',
      'dup.yaml:7:13 routes[1].listen: 127.0.0.1:3307 is also the listen address of routes[0] "a" (line 2); routes may share a listener only when every one of them declares serverNames',
    ])
  })

  test('a YAML syntax error has its line and column, exit 3', async () => {
    await ws.write('routes:\n  - name: a\n    listen: [3307\n    backend: x\n', 'syntax.yaml')
    const result = await gateway(['validate', '--config', 'syntax.yaml'], ws.dir)
    assert.equal(result.code, 3)
    assert.match(result.stderr, /^syntax\.yaml:4:5: invalid YAML: /)
  })

  test('a missing file, exit 3', async () => {
    const result = await gateway(['validate', '--config', 'nope.yaml'], ws.dir)
    assert.deepEqual(result, { code: 3, stdout: '', stderr: 'nope.yaml: cannot read the configuration file (ENOENT)\n' })
  })

  test('run refuses an invalid file before starting anything, exit 3', async () => {
    await ws.write('log: { level: loud }\nroutes: []\n', 'bad-run.yaml')
    const result = await gateway(['--config', 'bad-run.yaml'], ws.dir)
    assert.deepEqual(result, {
      code: 3,
      stdout: '',
      stderr: 'bad-run.yaml:1:15 log.level: must be one of trace, debug, info, warn, error\n',
    })
  })

  test('--dev-certs makes the example configuration valid (temp copy)', async () => {
    await copyFile(path.join(ROOT, 'config', 'proxy.yaml'), path.join(ws.dir, 'proxy.yaml'))
    const result = await gateway(['validate', '--config', 'proxy.yaml', '--dev-certs'], ws.dir)
    assert.equal(result.code, 0, result.stderr)
    const lines = result.stdout.trimEnd().split('\n')
    assert.equal(lines.at(-1), 'proxy.yaml: OK (1 route on 1 listener)')
    const logged = lines.slice(0, -1).map((l) => JSON.parse(l) as { msg: string })
    assert.deepEqual(logged.map((l) => l.msg), ['development ca created', 'development certificate created for localhost'])
    assert.ok(!result.stdout.includes('PRIVATE KEY'))
  })
})

describe('help, version and usage errors', () => {
  test('--help: usage and exit codes on stdout, exit 0', async () => {
    const result = await gateway(['--help'])
    assert.equal(result.code, 0)
    assert.match(result.stdout, /gateway validate --config FILE/)
    assert.match(result.stdout, /Exit codes:[\s\S]*\b3 +invalid configuration/)
    assert.equal(result.stderr, '')
  })

  test('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
    assert.deepEqual(await gateway(['--version']), { code: 0, stdout: `${pkg.version}\n`, stderr: '' })
  })

  for (const args of [[], ['validate'], ['--bogus'], ['frobnicate', '-c', 'x.yaml'], ['-c']]) {
    test(`usage error: gateway ${args.join(' ') || '(no arguments)'} exits 2`, async () => {
      const result = await gateway(args)
      assert.equal(result.code, 2)
      assert.equal(result.stdout, '')
      assert.match(result.stderr, /^gateway: .+\nTry 'gateway --help' for more information\.\n$/)
    })
  }
})
