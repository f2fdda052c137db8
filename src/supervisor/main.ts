/**
 * `gateway --config FILE`: load the file, start every listener, serve the admin endpoint, watch the files,
 * handle signals, and resolve with the process exit code once stopped. The CLI (src/cli/main.ts) calls this
 * and exits with the result.
 */
import type { GatewayConfig } from '../config/types.js'
import { listenKey } from '../config/types.js'
import { loadConfigFile, watchedFiles } from '../config/load.js'
import { startAdminServer, type AdminServer } from '../admin/server.js'
import { ConfigError } from '../errors.js'
import { createLogger, type Logger } from '../log.js'
import { MetricsAggregator } from '../metrics/aggregator.js'
import { ConfigWatch, hashFile } from './config-watch.js'
import { installSignalHandlers, type ShutdownSignal } from './signals.js'
import { Supervisor } from './supervisor.js'

/** Exit codes of a run (the CLI documents them; sysexits.h values where one fits). */
export const EXIT_CODES = {
  /** Stopped by SIGTERM/SIGINT after draining. */
  ok: 0,
  /** The configuration file was unreadable or invalid at startup (EX_CONFIG). */
  config: 78,
  /** Routes were configured but not one listener could start (EX_UNAVAILABLE). */
  nothingStarted: 69,
  /** Second SIGINT/SIGTERM during the drain: 128 + signal number, as shells report a signal death. */
  forcedSigint: 130,
  forcedSigterm: 143,
} as const

export interface RunOptions {
  configPath: string
}

function flush(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1_000)
    logger.flush(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** Runs the gateway until it is stopped; resolves with the exit code. */
export async function runSupervisor(opts: RunOptions): Promise<number> {
  // Hashed before loading: an edit saved while the gateway starts differs from it and is applied once the watch
  // runs (at worst one no-op reload), instead of becoming the watch's baseline while the old content runs.
  const loadedHash = await hashFile(opts.configPath)
  let config: GatewayConfig
  try {
    config = await loadConfigFile(opts.configPath)
  } catch (err) {
    const log = createLogger({ level: 'info' })
    const problems = err instanceof ConfigError ? err.problems : [String((err as Error)?.message ?? err)]
    const code = err instanceof ConfigError ? err.code : 'GW_ERR_CONFIG_READ'
    log.error({ file: opts.configPath, code, problems }, 'configuration rejected, not starting')
    await flush(log)
    return EXIT_CODES.config
  }

  const logger = createLogger({ level: config.log.level, format: config.log.format })
  const metrics = new MetricsAggregator()
  let admin: AdminServer | undefined
  let watch: ConfigWatch | undefined

  const startAdmin = async (cfg: GatewayConfig): Promise<void> => {
    if (!cfg.admin) return
    try {
      admin = await startAdminServer({ listen: cfg.admin.listen, view: supervisor, metrics, logger })
    } catch (err) {
      // The admin endpoint is for observing; failing to bind it must not take the routes down.
      logger.error({ err, code: (err as { code?: string }).code, listen: listenKey(cfg.admin.listen) }, 'admin server failed to start')
    }
  }

  const supervisor: Supervisor = new Supervisor({
    logger,
    metrics,
    loadConfig: loadConfigFile,
    async onApplied(next, previous) {
      const before = previous.admin ? listenKey(previous.admin.listen) : undefined
      const after = next.admin ? listenKey(next.admin.listen) : undefined
      // Also retried when the same address failed to bind before (it may be free now).
      if (before !== after || (next.admin && !admin)) {
        await admin?.close()
        admin = undefined
        await startAdmin(next)
      }
      if (next.log.format !== previous.log.format) {
        logger.warn({ format: next.log.format }, 'log.format applies to new children; the supervisor keeps its format until restart')
      }
      await watch?.setFiles(watchedFiles(next))
    },
  })

  let resolveExit!: (code: number) => void
  const exited = new Promise<number>((r) => (resolveExit = r))
  let shuttingDown: Promise<void> | undefined
  /** Set by a second signal: whichever path finishes first, the exit code says the drain was cut short. */
  let forcedCode: number | undefined

  const shutdown = (signal: ShutdownSignal | 'startup-failure', code: number): void => {
    shuttingDown ??= (async () => {
      // The configuration in force (reloads included); before start() has run, the one loaded above.
      const running = supervisor.config ?? config
      const delayMs = signal === 'startup-failure' ? 0 : (running.admin?.shutdownDelayMs ?? 0)
      if (delayMs > 0) {
        logger.info({ signal, shutdownDelayMs: delayMs }, 'shutting down: not ready, listeners keep accepting for admin.shutdownDelay')
      } else logger.info({ signal }, 'shutting down: draining every listener')
      // Called before anything is awaited: /readyz turns 503 in this very tick, the delay (if any) then runs.
      const stopped = supervisor.shutdown({ delayMs })
      await watch?.close()
      await stopped
      await admin?.close()
      if (forcedCode !== undefined) return
      logger.info({ code }, 'stopped')
      await flush(logger)
      resolveExit(code)
    })()
  }

  // Installed before any child starts, so a signal during startup drains instead of killing the supervisor.
  const uninstall = installSignalHandlers({
    reload() {
      logger.info({ trigger: 'SIGHUP' }, 'reload requested')
      void (async () => {
        await watch?.acceptConfig()
        await supervisor.reload('SIGHUP')
      })()
    },
    shutdown: (signal) => shutdown(signal, EXIT_CODES.ok),
    force(signal) {
      logger.warn({ signal }, 'second signal: killing children without draining')
      const code = signal === 'SIGINT' ? EXIT_CODES.forcedSigint : EXIT_CODES.forcedSigterm
      forcedCode ??= code
      void (async () => {
        await Promise.all([supervisor.kill(), watch?.close(), admin?.close()])
        await flush(logger)
        resolveExit(code)
      })()
    },
    ignored: (signal, why) => logger.info({ signal, why }, 'signal ignored'),
  })

  try {
    const { started, failed } = await supervisor.start(config)
    logger.info({ file: config.sourcePath, started, failed, routes: config.routes.length }, 'gateway started')
    if (started === 0 && failed > 0) {
      logger.fatal({ failed }, 'no listener could start, exiting')
      shutdown('startup-failure', EXIT_CODES.nothingStarted)
    } else if (!shuttingDown) {
      await startAdmin(config)
      watch = await ConfigWatch.start({ configPath: config.sourcePath, files: watchedFiles(config), logger, configHash: loadedHash })
      watch.on('config', () => {
        logger.info({ trigger: 'file', file: config.sourcePath }, 'configuration file changed')
        void supervisor.reload('file')
      })
      watch.on('tls', (paths) => {
        logger.info({ paths }, 'certificate files changed')
        void supervisor.checkTls()
      })
      // A signal may have arrived while the watcher was starting; shutdown() closed whatever existed then.
      if (shuttingDown) await watch.close()
      else {
        // Catch up with edits saved while the children started, before the watch existed.
        void watch.check()
        void supervisor.checkTls()
      }
    }
    return await exited
  } finally {
    uninstall()
  }
}
