/**
 * One invalid file per schema rule, each asserting the exact `line:col key.path: message` line, plus the
 * YAML-level failures (syntax, duplicate keys, unreadable file) and the "every problem at once" promise.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ConfigError } from '../../../src/errors.js'
import { loadConfigFile } from '../../../src/config/load.js'
import { q, workspace, type Workspace } from './fixtures.js'

let ws: Workspace
before(async () => {
  ws = await workspace()
})
after(() => ws.cleanup())

/** A valid single route whose lines are numbered below; `extra` lines are appended to the route. */
function file(...extra: string[]): string {
  return [
    'routes:', //                                                           line 1
    '  - name: a', //                                                       line 2
    '    listen: 127.0.0.1:3307', //                                        line 3
    '    backend: 127.0.0.1:3306', //                                       line 4
    `    tls: { cert: ${q(ws.pem.cert)}, key: ${q(ws.pem.key)} }`, //       line 5
    ...extra.map((l) => `    ${l}`), //                                     line 6...
    '',
  ].join('\n')
}

describe('schema rules', () => {
  test('the base file is valid', async () => {
    const config = await loadConfigFile(await ws.write(file()))
    assert.equal(config.routes.length, 1)
  })

  const cases: Array<[string, () => string, string[]]> = [
    ['unknown nested key, reported at the key', () => file('backendTls: { mode: required, sni: x }'), ['6:35 routes[0].backendTls.sni: unknown key']],
    ['unknown key in a block mapping', () => file('timeouts:', '  idel: 5s'), ['7:7 routes[0].timeouts.idel: unknown key']],
    ['enum', () => file('greeting: sometimes'), ['6:15 routes[0].greeting: must be one of backend, gateway']],
    ['backendTls.mode enum', () => file('backendTls: { mode: verify }'), ['6:25 routes[0].backendTls.mode: must be one of disabled, required, verify-ca, verify-identity']],
    ['boolean type', () => file('tcpKeepAlive: "yes"'), ['6:19 routes[0].tcpKeepAlive: must be true or false']],
    ['integer type', () => file('maxConnections: 1.5'), ['6:21 routes[0].maxConnections: must be an integer']],
    ['minimum', () => file('maxConnections: 0'), ['6:21 routes[0].maxConnections: must be >= 1']],
    ['maxHandshakeBytes minimum', () => file('maxHandshakeBytes: 100'), ['6:24 routes[0].maxHandshakeBytes: must be >= 1024']],
    ['serverNames entry', () => file('serverNames: [db.example.com, "bad name"]'), ['6:35 routes[0].serverNames[1]: must be a DNS name ("db.example.com") or a wildcard ("*.example.com")']],
    ['serverNames empty', () => file('serverNames: []'), ['6:18 routes[0].serverNames: must not be empty']],
    ['serverNames repeated', () => file('serverNames: [a.example.com, a.example.com]'), ['6:34 routes[0].serverNames[1]: repeats item 0']],
    ['serverVersion that YAML reads as a number', () => file('serverVersion: 8.0'), ['6:20 routes[0].serverVersion: must be a string of 1 to 250 printable ASCII characters (quote it: "8.0.36")']],
    ['default must be boolean', () => file('default: 1'), ['6:14 routes[0].default: must be true or false']],
  ]
  for (const [name, yaml, expected] of cases) {
    test(name, async () => {
      assert.deepEqual(await ws.problems(yaml()), expected)
    })
  }

  test('minVersion enum', async () => {
    const problems = await ws.problems(file().replace('tls: {', 'tls: { minVersion: TLSv1.1,'))
    assert.deepEqual(problems, ['5:24 routes[0].tls.minVersion: must be one of TLSv1.2, TLSv1.3'])
  })

  test('the issue example: tls.mode outside the enum', async () => {
    const yaml = ['routes:', '  - name: a', '    listen: 3307', '    backend: db:3306', '    tls:', '      mode: sometimes', ''].join('\n')
    assert.deepEqual(await ws.problems(yaml), ['6:13 routes[0].tls.mode: must be one of required, preferred, disabled'])
  })

  test('unknown key that is a typo of a real one (tls.crt)', async () => {
    const yaml = file().replace('tls: { cert:', 'tls: { crt:')
    assert.deepEqual(await ws.problems(yaml), ['5:12 routes[0].tls.crt: unknown key'])
  })

  test('unknown top-level key', async () => {
    assert.deepEqual(await ws.problems(`${file()}logging: { level: info }\n`), ['6:1 logging: unknown key'])
  })

  test('missing required key: reported at the mapping that lacks it', async () => {
    const yaml = ['routes:', '  - name: a', '    listen: 3307', ''].join('\n')
    assert.deepEqual(await ws.problems(yaml), ['2:5 routes[0].backend: is required'])
  })

  test('missing routes', async () => {
    assert.deepEqual(await ws.problems('log: { level: info }\n'), ['1:1 routes: is required'])
  })

  test('routes must be a list', async () => {
    assert.deepEqual(await ws.problems('routes:\n  name: a\n'), ['2:3 routes: must be a list'])
  })

  test('root must be a mapping', async () => {
    assert.deepEqual(await ws.problems('- a\n- b\n'), ['1:1 (root): must be a mapping'])
  })

  test('empty file', async () => {
    assert.deepEqual(await ws.problems('# nothing here\n'), ['1:1 (root): the file is empty; it needs at least a routes list'])
  })

  test('route name pattern', async () => {
    const problems = await ws.problems(file().replace('name: a', 'name: Tenant A'))
    assert.deepEqual(problems, ['2:11 routes[0].name: must start with a-z or 0-9 and contain only a-z, 0-9, "_" and "-" (at most 64 characters)'])
  })

  test('log level and format', async () => {
    const problems = await ws.problems(`log: { level: loud, format: xml }\n${file()}`)
    assert.deepEqual(problems, [
      '1:15 log.level: must be one of trace, debug, info, warn, error',
      '1:29 log.format: must be one of json, pretty',
    ])
  })

  test('admin needs listen', async () => {
    assert.deepEqual(await ws.problems(`admin: {}\n${file()}`), ['1:8 admin.listen: is required'])
  })

  test('every problem is listed, in file order, each with its own position', async () => {
    const yaml = [
      'log: { level: loud }',
      'routes:',
      '  - name: a',
      '    listen: 127.0.0.1:3307',
      '    backend: 127.0.0.1:3306',
      '    tls: { mode: sometimes }',
      '  - name: B',
      '    listen: 127.0.0.1:3308',
      '    backend: db',
      '',
    ].join('\n')
    assert.deepEqual(await ws.problems(yaml), [
      '1:15 log.level: must be one of trace, debug, info, warn, error',
      '6:18 routes[0].tls.mode: must be one of required, preferred, disabled',
      '7:11 routes[1].name: must start with a-z or 0-9 and contain only a-z, 0-9, "_" and "-" (at most 64 characters)',
      '9:14 routes[1].backend: must be "host:port" or "[ipv6]:port"',
    ])
  })
})

describe('YAML-level failures are GW_ERR_CONFIG_READ', () => {
  async function readError(yaml: string): Promise<ConfigError> {
    const target = await ws.write(yaml)
    const err = await loadConfigFile(target).then(
      () => assert.fail('expected a ConfigError'),
      (e: unknown) => e
    )
    assert.ok(err instanceof ConfigError)
    assert.equal(err.code, 'GW_ERR_CONFIG_READ')
    for (const line of err.problems) assert.ok(line.startsWith(`${target}:`), line)
    return err
  }

  test('syntax error carries line and column', async () => {
    const err = await readError('routes:\n  - name: a\n    listen: [3307\n    backend: x\n')
    // The parser notices the unclosed "[" where the next key starts, and says what it expected.
    assert.match(err.problems[0]!, /\.yaml:4:5: invalid YAML: Flow sequence .* end with a \]$/)
  })

  test('duplicate key', async () => {
    const err = await readError('routes: []\nroutes: []\n')
    assert.match(err.problems[0]!, /\.yaml:2:1: invalid YAML: Map keys must be unique/)
  })

  test('unreadable file', async () => {
    const missing = path.join(ws.dir, 'does-not-exist.yaml')
    const err = await loadConfigFile(missing).catch((e: unknown) => e)
    assert.ok(err instanceof ConfigError)
    assert.equal(err.code, 'GW_ERR_CONFIG_READ')
    assert.deepEqual(err.problems, [`${missing}: cannot read the configuration file (ENOENT)`])
  })

  test('schema problems are GW_ERR_CONFIG_INVALID with every line in .problems and the message', async () => {
    const target = await ws.write('routes: 5\nlog: 1\n')
    const err = await loadConfigFile(target).catch((e: unknown) => e)
    assert.ok(err instanceof ConfigError)
    assert.equal(err.code, 'GW_ERR_CONFIG_INVALID')
    assert.deepEqual(err.problems, [`${target}:1:9 routes: must be a list`, `${target}:2:6 log: must be a mapping`])
    assert.equal(err.message, err.problems.join('\n'))
  })
})
