/**
 * Watches the configuration file and the certificate/key/CA files it names, and says when their *contents*
 * changed.
 *
 * Directories are watched, not the files: an atomic save (write a temp file, rename it over the original) and a
 * Kubernetes ConfigMap update (a new `..2024_..` directory, then the `..data` symlink renamed over) both replace
 * the directory entry, and a watch on the old inode would go silent. Any event in a watched directory starts
 * (or restarts) a debounce timer; when it fires, the files are hashed through their paths (following symlinks)
 * and compared with the last hashes. Editors that write twice, touch without changing, or create and delete
 * temp files next to the config therefore cause at most one check and no spurious reload.
 */
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import type { Logger } from '../log.js'

export interface ConfigWatchOptions {
  configPath: string
  /** Certificate, key and CA files in use. */
  files: readonly string[]
  logger: Logger
  /** Quiet time after the last event before files are compared. */
  debounceMs?: number
  /**
   * sha256 of the config content actually running (hashed before it was loaded). Defaults to the file's content
   * when the watch starts; passing it makes check() report an edit saved in between.
   */
  configHash?: string
}

export interface ConfigWatchEvents {
  /** The configuration file's content differs from the last one seen. */
  config: []
  /** Contents of these certificate/key/CA paths changed (and the config did not). */
  tls: [paths: string[]]
}

export const DEFAULT_DEBOUNCE_MS = 200
/** chokidar's per-path throttle on 'change' events (lib: `_throttle(EV.CHANGE, path, 50)`). */
const CHOKIDAR_CHANGE_THROTTLE_MS = 50
/** Bound on waiting for chokidar's initial scan, so a slow or odd filesystem cannot stall startup. */
const READY_TIMEOUT_MS = 5_000

/** sha256 of a file's bytes, or undefined when it cannot be read right now (mid-rename, deleted). */
export async function hashFile(file: string): Promise<string | undefined> {
  try {
    return createHash('sha256')
      .update(await readFile(file))
      .digest('hex')
  } catch {
    return undefined
  }
}

export class ConfigWatch extends EventEmitter<ConfigWatchEvents> {
  readonly #configPath: string
  readonly #logger: Logger
  readonly #debounceMs: number
  #files = new Set<string>()
  #hashes = new Map<string, string | undefined>()
  #dirs = new Set<string>()
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  #checking: Promise<void> | undefined
  #recheck = false
  #closed = false
  /** Bumped by acceptConfig(): a comparison that began before it must not report what SIGHUP now applies. */
  #generation = 0
  #accepting: Promise<void> = Promise.resolve()

  private constructor(opts: ConfigWatchOptions) {
    super()
    this.#configPath = path.resolve(opts.configPath)
    this.#logger = opts.logger
    this.#debounceMs = opts.debounceMs ?? DEFAULT_DEBOUNCE_MS
  }

  /** Starts watching; resolves once the initial hashes are taken and the watcher is ready. */
  static async start(opts: ConfigWatchOptions): Promise<ConfigWatch> {
    const w = new ConfigWatch(opts)
    await w.#open(opts.files, opts.configHash)
    return w
  }

  async #open(files: readonly string[], configHash: string | undefined): Promise<void> {
    this.#watcher = watch([], {
      ignoreInitial: true,
      depth: 0,
      // Symlinks are entries of the watched directory like any file: a `..data` swap must show up as an event
      // on that entry, and following links could walk into the timestamped ConfigMap directories.
      followSymlinks: false,
      // We debounce and hash ourselves; chokidar's own atomic-write merging would only delay events.
      atomic: false,
    })
    this.#watcher.on('all', (event, p) => this.#onEvent(event, p))
    this.#watcher.on('error', (err) => this.#logger.warn({ err }, 'config watch error'))
    const ready = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, READY_TIMEOUT_MS)
      this.#watcher!.once('ready', () => {
        clearTimeout(timer)
        resolve()
      })
    })
    this.#hashes.set(this.#configPath, configHash ?? (await hashFile(this.#configPath)))
    await this.setFiles(files)
    await ready
  }

  /** Replaces the set of certificate/key/CA files (after a reload); their current contents become the baseline. */
  async setFiles(files: readonly string[]): Promise<void> {
    const next = new Set(files.map((f) => path.resolve(f)))
    for (const f of next) if (!this.#files.has(f)) this.#hashes.set(f, await hashFile(f))
    for (const f of this.#files) if (!next.has(f)) this.#hashes.delete(f)
    this.#files = next
    const dirs = new Set([path.dirname(this.#configPath), ...[...next].map((f) => path.dirname(f))])
    const added = [...dirs].filter((d) => !this.#dirs.has(d))
    const removed = [...this.#dirs].filter((d) => !dirs.has(d))
    this.#dirs = dirs
    if (removed.length > 0) this.#watcher?.unwatch(removed)
    if (added.length > 0) this.#watcher?.add(added)
  }

  /**
   * Records the config file's current content as seen, so a reload that was triggered some other way (SIGHUP)
   * is not repeated when the watcher notices the same change.
   */
  async acceptConfig(): Promise<void> {
    this.#generation++
    // Pending events are about content the caller's reload is going to read anyway (certificates included: a
    // reload checks them too), so the debounced check is dropped rather than allowed to race it.
    clearTimeout(this.#timer)
    this.#accepting = hashFile(this.#configPath).then((h) => {
      this.#hashes.set(this.#configPath, h)
    })
    await this.#accepting
    // chokidar reports a path's 'change' at most once per 50 ms and drops the rest, so a save landing just after
    // the SIGHUP may never produce an event: compare once more after that window, whatever happens.
    if (!this.#closed) {
      clearTimeout(this.#timer)
      this.#timer = setTimeout(() => void this.check(), Math.max(this.#debounceMs, CHOKIDAR_CHANGE_THROTTLE_MS * 2))
    }
  }

  /** Runs a check now instead of waiting for an event (used by tests and by SIGHUP-free environments). */
  check(): Promise<void> {
    if (this.#checking) {
      this.#recheck = true
      return this.#checking
    }
    this.#checking = this.#compare().finally(() => {
      this.#checking = undefined
      if (this.#recheck && !this.#closed) {
        this.#recheck = false
        void this.check()
      }
    })
    return this.#checking
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#watcher?.close()
  }

  #onEvent(event: string, p: string): void {
    if (this.#closed) return
    this.#logger.trace({ event, path: p }, 'config watch event')
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => void this.check(), this.#debounceMs)
  }

  async #compare(): Promise<void> {
    const generation = this.#generation
    await this.#accepting
    const configHash = await hashFile(this.#configPath)
    // The event loop runs due timers before pending signals, so a check and a SIGHUP can start together; the
    // SIGHUP reload wins and this check stands down (one reload per change, attributed to its real trigger).
    if (generation !== this.#generation) return
    // A missing config is a transient state of delete-then-write editors; wait for the file to come back
    // rather than report a reload failure for a file nobody meant to remove.
    if (configHash !== undefined && configHash !== this.#hashes.get(this.#configPath)) {
      this.#hashes.set(this.#configPath, configHash)
      // The reload re-reads certificates too, so their baselines move with it.
      for (const f of this.#files) this.#hashes.set(f, await hashFile(f))
      if (!this.#closed) this.emit('config')
      return
    }
    const changed: string[] = []
    for (const f of this.#files) {
      const h = await hashFile(f)
      if (h !== undefined && h !== this.#hashes.get(f)) {
        this.#hashes.set(f, h)
        changed.push(f)
      }
    }
    if (changed.length > 0 && !this.#closed) this.emit('tls', changed)
  }
}
