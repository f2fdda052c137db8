/**
 * Process signals of the supervisor (ghostunnel signals.go, caddy sigtrap_posix.go):
 * - SIGHUP reloads the configuration; during a shutdown it is ignored rather than left at its default
 *   action (which would kill the process mid-drain).
 * - SIGTERM / SIGINT start a graceful shutdown; a second one of either forces an immediate exit.
 *
 * Children ignore all three and obey the supervisor over IPC only, so a terminal Ctrl-C (sent to the whole
 * foreground process group) or systemd's KillMode=control-group SIGTERM cannot bypass the drain.
 */

export type ShutdownSignal = 'SIGTERM' | 'SIGINT'

export interface SignalActions {
  reload(): void
  shutdown(signal: ShutdownSignal): void
  force(signal: ShutdownSignal): void
  /** A signal that is deliberately not acted on (SIGHUP while draining). */
  ignored?(signal: NodeJS.Signals, why: string): void
}

/** The part of `process` this module needs, so tests can pass an EventEmitter. */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: () => void): unknown
  off(event: NodeJS.Signals, listener: () => void): unknown
}

/** Installs the handlers; returns a function that removes them. */
export function installSignalHandlers(actions: SignalActions, source: SignalSource = process): () => void {
  let stopping = false
  const onHup = () => {
    if (stopping) actions.ignored?.('SIGHUP', 'shutting down')
    else actions.reload()
  }
  const onStop = (signal: ShutdownSignal) => () => {
    if (stopping) {
      actions.force(signal)
      return
    }
    stopping = true
    actions.shutdown(signal)
  }
  const onTerm = onStop('SIGTERM')
  const onInt = onStop('SIGINT')
  source.on('SIGHUP', onHup)
  source.on('SIGTERM', onTerm)
  source.on('SIGINT', onInt)
  return () => {
    source.off('SIGHUP', onHup)
    source.off('SIGTERM', onTerm)
    source.off('SIGINT', onInt)
  }
}

/** For children: the supervisor decides when they stop, so these signals must not terminate them. */
export function ignoreTerminalSignals(source: SignalSource = process): void {
  const ignore = () => {}
  for (const signal of ['SIGHUP', 'SIGINT', 'SIGTERM'] as const) source.on(signal, ignore)
}
