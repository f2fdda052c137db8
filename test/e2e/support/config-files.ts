/** Writes gateway YAML files for end-to-end tests, in the ways operators and tools save them. */
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import type { TestEnv } from '../../helpers/env.js'

export interface E2eRoute {
  name: string
  port: number
  cert?: string
  key?: string
  maxConnections?: number
  /** e.g. '2s' */
  drainTimeout?: string
}

export interface E2eConfig {
  routes: E2eRoute[]
  adminPort?: number
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error'
  /** Default drain timeout of every route; short so tests stay fast. */
  drainTimeout?: string
}

/** A YAML config relaying each route to the harness MariaDB over plain loopback TCP, clients on TLS. */
export function gatewayYaml(env: TestEnv, cfg: E2eConfig): string {
  const lines = [`log: { level: ${cfg.logLevel ?? 'info'} }`]
  if (cfg.adminPort) lines.push(`admin: { listen: 127.0.0.1:${cfg.adminPort} }`)
  lines.push(
    'defaults:',
    '  tls: { mode: required }',
    '  timeouts: { connect: 2s, handshake: 5s }',
    `  drainTimeout: ${cfg.drainTimeout ?? '2s'}`,
    'routes:'
  )
  for (const r of cfg.routes) {
    lines.push(
      `  - name: ${r.name}`,
      `    listen: 127.0.0.1:${r.port}`,
      `    backend: 127.0.0.1:${env.mariadb.port}`,
      `    tls: { cert: ${JSON.stringify(r.cert ?? env.pki.cert)}, key: ${JSON.stringify(r.key ?? env.pki.key)} }`
    )
    if (r.maxConnections !== undefined) lines.push(`    maxConnections: ${r.maxConnections}`)
    if (r.drainTimeout !== undefined) lines.push(`    drainTimeout: ${r.drainTimeout}`)
  }
  return `${lines.join('\n')}\n`
}

/** Overwrites the file in place (what `echo > file` and many editors do). */
export async function writeInPlace(file: string, text: string): Promise<void> {
  await writeFile(file, text)
}

/** Writes a temp file next to it and renames it over the original (vim, IDEs, config management tools). */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`)
  await writeFile(tmp, text)
  await rename(tmp, file)
}

/**
 * A Kubernetes ConfigMap volume: `dir/gateway.yaml -> ..data/gateway.yaml`, `..data -> ..<version>`.
 * update() does what kubelet does: new version directory, `..data_tmp` symlink, rename over `..data`, old
 * directory removed.
 */
export async function configMapVolume(dir: string, files: Record<string, string>) {
  let version = 0
  let current: string | undefined
  const publish = async (contents: Record<string, string>) => {
    const name = `..${new Date().toISOString().replace(/[^0-9]/g, '_')}.${++version}`
    await mkdir(path.join(dir, name))
    for (const [f, text] of Object.entries(contents)) await writeFile(path.join(dir, name, f), text)
    await symlink(name, path.join(dir, '..data_tmp'))
    await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'))
    if (current) await rm(path.join(dir, current), { recursive: true, force: true })
    current = name
  }
  await mkdir(dir, { recursive: true })
  await publish(files)
  for (const f of Object.keys(files)) await symlink(path.join('..data', f), path.join(dir, f))
  return { update: publish }
}
