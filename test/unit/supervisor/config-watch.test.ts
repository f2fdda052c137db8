/**
 * ConfigWatch on real files: the save styles operators and tools use (in-place write, double write, atomic
 * rename, Kubernetes ConfigMap `..data` symlink swap) each produce exactly one 'config' event, a touch without a
 * content change produces none, and certificate content changes produce 'tls'.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { mkdir, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import { ConfigWatch } from '../../../src/supervisor/config-watch.js'
import { waitFor } from '../../helpers/wait.js'

const root = mkdtempSync(path.join(os.tmpdir(), 'gw-config-watch-'))
after(() => rm(root, { recursive: true, force: true }))

const DEBOUNCE_MS = 50
/** Longer than the debounce plus inotify latency: after this, no further event is coming. */
const SETTLE_MS = 400

async function setup(name: string, files: Record<string, string> = {}) {
  const dir = path.join(root, name)
  await mkdir(dir)
  const config = path.join(dir, 'gateway.yaml')
  await writeFile(config, 'routes: []\n')
  for (const [f, content] of Object.entries(files)) await writeFile(path.join(dir, f), content)
  const watch = await ConfigWatch.start({
    configPath: config,
    files: Object.keys(files).map((f) => path.join(dir, f)),
    logger: pino({ level: 'silent' }),
    debounceMs: DEBOUNCE_MS,
  })
  const events: string[] = []
  watch.on('config', () => events.push('config'))
  watch.on('tls', (paths) => events.push(`tls:${paths.map((p) => path.basename(p)).join(',')}`))
  return { dir, config, watch, events }
}

describe('ConfigWatch', () => {
  it('in-place write: one event; writing the same bytes again or touching: none', async () => {
    const { config, watch, events } = await setup('in-place')
    try {
      await writeFile(config, 'routes: [] # edited\n')
      await waitFor(() => events.length === 1, { timeoutMs: 3_000, what: 'config event' })
      await writeFile(config, 'routes: [] # edited\n')
      await utimes(config, new Date(), new Date())
      await sleep(SETTLE_MS)
      assert.deepEqual(events, ['config'])
    } finally {
      await watch.close()
    }
  })

  it('an editor writing twice (truncate, then content) gives one event', async () => {
    const { config, watch, events } = await setup('double-write')
    try {
      await writeFile(config, '')
      await writeFile(config, 'routes: [] # saved\n')
      await sleep(SETTLE_MS)
      assert.deepEqual(events, ['config'])
    } finally {
      await watch.close()
    }
  })

  it('atomic save by rename over the file', async () => {
    const { dir, config, watch, events } = await setup('atomic')
    try {
      const tmp = path.join(dir, '.gateway.yaml.tmp123')
      await writeFile(tmp, 'routes: [] # renamed in\n')
      await rename(tmp, config)
      await waitFor(() => events.length === 1, { timeoutMs: 3_000, what: 'config event' })
      // A second atomic save keeps working: the watch is on the directory, not the replaced inode.
      await writeFile(tmp, 'routes: [] # renamed again\n')
      await rename(tmp, config)
      await waitFor(() => events.length === 2, { timeoutMs: 3_000, what: 'second config event' })
      await sleep(SETTLE_MS)
      assert.deepEqual(events, ['config', 'config'])
    } finally {
      await watch.close()
    }
  })

  it('Kubernetes ConfigMap update: ..data symlink swapped to a new timestamped directory', async () => {
    // Layout kubelet creates: gateway.yaml -> ..data/gateway.yaml, ..data -> ..2024_01_01_00_00_00.1
    const dir = path.join(root, 'configmap')
    await mkdir(path.join(dir, '..v1'), { recursive: true })
    await writeFile(path.join(dir, '..v1', 'gateway.yaml'), 'routes: [] # v1\n')
    await writeFile(path.join(dir, '..v1', 'tls.crt'), 'cert v1')
    await symlink('..v1', path.join(dir, '..data'))
    await symlink('..data/gateway.yaml', path.join(dir, 'gateway.yaml'))
    await symlink('..data/tls.crt', path.join(dir, 'tls.crt'))
    const watch = await ConfigWatch.start({
      configPath: path.join(dir, 'gateway.yaml'),
      files: [path.join(dir, 'tls.crt')],
      logger: pino({ level: 'silent' }),
      debounceMs: DEBOUNCE_MS,
    })
    const events: string[] = []
    watch.on('config', () => events.push('config'))
    watch.on('tls', () => events.push('tls'))
    try {
      const swap = async (version: string, config: string, cert: string) => {
        await mkdir(path.join(dir, version))
        await writeFile(path.join(dir, version, 'gateway.yaml'), config)
        await writeFile(path.join(dir, version, 'tls.crt'), cert)
        await symlink(version, path.join(dir, '..data_tmp'))
        await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'))
      }
      await swap('..v2', 'routes: [] # v2\n', 'cert v1')
      await rm(path.join(dir, '..v1'), { recursive: true })
      await waitFor(() => events.length === 1, { timeoutMs: 3_000, what: 'config event after swap' })
      // Only the certificate changes in the next update: a tls event, no config reload.
      await swap('..v3', 'routes: [] # v2\n', 'cert v3')
      await waitFor(() => events.length === 2, { timeoutMs: 3_000, what: 'tls event after swap' })
      await sleep(SETTLE_MS)
      assert.deepEqual(events, ['config', 'tls'])
    } finally {
      await watch.close()
    }
  })

  it('certificate files in another directory: content changes give tls events; setFiles moves the watch', async () => {
    const { dir, watch, events } = await setup('certs', {})
    const certDir = path.join(dir, 'certs')
    await mkdir(certDir)
    const crt = path.join(certDir, 'a.crt')
    const key = path.join(certDir, 'a.key')
    await writeFile(crt, 'crt 1')
    await writeFile(key, 'key 1')
    try {
      await watch.setFiles([crt, key])
      await sleep(SETTLE_MS)
      await writeFile(crt, 'crt 2')
      await writeFile(key, 'key 2')
      await waitFor(() => events.length === 1, { timeoutMs: 3_000, what: 'tls event' })
      assert.deepEqual(events, ['tls:a.crt,a.key'])
      await watch.setFiles([])
      await writeFile(crt, 'crt 3')
      await sleep(SETTLE_MS)
      assert.equal(events.length, 1, 'files no longer in use are not reported')
    } finally {
      await watch.close()
    }
  })

  it('acceptConfig (SIGHUP applied the file) suppresses the watcher reporting the same change', async () => {
    const { config, watch, events } = await setup('accepted')
    try {
      for (let i = 0; i < 5; i++) {
        await writeFile(config, `routes: [] # sighup ${i}\n`)
        await watch.acceptConfig()
      }
      await sleep(SETTLE_MS)
      assert.deepEqual(events, [])
      await writeFile(config, 'routes: [] # a later edit without SIGHUP\n')
      await waitFor(() => events.length === 1, { timeoutMs: 3_000, what: 'config event for the unaccepted edit' })
    } finally {
      await watch.close()
    }
  })

  it('an edit saved right after a SIGHUP, while chokidar still holds back change events, is reported', async () => {
    // chokidar drops a path's 'change' events for 50 ms after the one it reported. A SIGHUP in that window
    // (acceptConfig) cancels the pending check, so the next save must be looked for without an event.
    const { config, watch, events } = await setup('accepted-then-edited')
    try {
      for (let i = 0; i < 5; i++) {
        await writeFile(config, `routes: [] # sighup ${i}\n`)
        await watch.acceptConfig()
        await writeFile(config, `routes: [] # saved right after sighup ${i}\n`)
        await waitFor(() => events.length === i + 1, { timeoutMs: 3_000, what: `config event for the save after SIGHUP ${i}` })
      }
      await sleep(SETTLE_MS)
      assert.equal(events.length, 5)
    } finally {
      await watch.close()
    }
  })

  it('a deleted config file is waited out, not reported; its return with new content is', async () => {
    const { config, watch, events } = await setup('deleted')
    try {
      await rm(config)
      await sleep(SETTLE_MS)
      assert.deepEqual(events, [])
      await writeFile(config, 'routes: [] # back\n')
      await waitFor(() => events.length === 1, { timeoutMs: 3_000, what: 'config event' })
    } finally {
      await watch.close()
    }
  })
})
