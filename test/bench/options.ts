/**
 * The command line of `npm run bench`. The options are documented in bench.ts's header, which --help
 * prints, so that the usage text and the entry point's description cannot drift apart.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { KeyType } from '../helpers/certs.js'

const USAGE_FILE = new URL('./bench.js', import.meta.url)

export type LoadName = 'ps' | 'conn' | 'bulk' | 'idle'

export interface Options {
  quick: boolean
  keyType: KeyType
  rounds: number
  psSeconds: number
  connSeconds: number
  bulkSeconds: number
  bulkMinQueries: number
  threads: number[]
  connConcurrency: number
  idle: number[]
  loads: Set<LoadName>
  profile: boolean
  syscalls: boolean
  /** socat's -b (transfer block size; its default is 8192). */
  socatBuffer?: number
  /** Target E, a minimal Node.js TCP forwarder (node-hop.ts): on unless --no-node-hop. */
  nodeHop: boolean
  keep: boolean
  json?: string
  budgetSeconds: number
}

export function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick')
  const o: Options = {
    quick,
    keyType: 'rsa2048',
    rounds: 2,
    psSeconds: quick ? 2 : 4,
    connSeconds: quick ? 2 : 3,
    bulkSeconds: quick ? 0 : 2,
    bulkMinQueries: 1,
    threads: [8, 64],
    connConcurrency: 8,
    idle: quick ? [200, 1000] : [1000, 10000],
    loads: new Set(['ps', 'conn', 'bulk', 'idle']),
    profile: false,
    syscalls: false,
    nodeHop: true,
    keep: false,
    budgetSeconds: 900,
  }
  const list = (s: string) => s.split(',').filter(Boolean).map(Number)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const v = () => {
      const x = argv[++i]
      if (x === undefined) throw new Error(`${a} needs a value`)
      return x
    }
    switch (a) {
      case '--quick':
        break
      case '--key-type': {
        const k = v()
        if (k !== 'rsa2048' && k !== 'ecdsa-p256') throw new Error('--key-type is rsa2048 or ecdsa-p256')
        o.keyType = k
        break
      }
      case '--rounds':
        o.rounds = Math.max(1, Number(v()))
        break
      case '--ps-seconds':
        o.psSeconds = Number(v())
        break
      case '--conn-seconds':
        o.connSeconds = Number(v())
        break
      case '--bulk-seconds':
        o.bulkSeconds = Number(v())
        break
      case '--threads':
        o.threads = list(v())
        break
      case '--conn-concurrency':
        o.connConcurrency = Number(v())
        break
      case '--idle':
        o.idle = list(v())
        break
      case '--loads':
        o.loads = new Set(v().split(',') as LoadName[])
        break
      case '--profile':
        o.profile = true
        break
      case '--syscalls':
        o.profile = true
        o.syscalls = true
        break
      case '--socat-buffer':
        o.socatBuffer = Number(v())
        break
      case '--node-hop':
        o.nodeHop = true
        break
      case '--no-node-hop':
        o.nodeHop = false
        break
      case '--keep':
        o.keep = true
        break
      case '--json':
        o.json = path.resolve(v())
        break
      case '--budget-seconds':
        o.budgetSeconds = Number(v())
        break
      case '--help':
        process.stdout.write(`${readFileSync(fileURLToPath(USAGE_FILE), 'utf8').split('*/')[0]}*/\n`)
        process.exit(0)
      default:
        throw new Error(`unknown option ${a}`)
    }
  }
  return o
}
