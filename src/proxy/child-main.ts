/**
 * Entry of a proxy child: one process per listener, forked by the supervisor (src/supervisor/listener-process.ts).
 *
 * Life: wait for 'start', carrying the listening handle the supervisor bound (for as long as it takes: an idle
 * child is the supervisor's warm spare, and if the supervisor goes away first the channel closes and we exit);
 * build the ListenerEngine (loads TLS material), listen on the handle, say 'ready'. Then serve 'collect',
 * 'reload-tls', 'set-log-level' and 'drain'. The supervisor is the only authority: terminal signals are
 * ignored, and when the IPC channel closes (the supervisor died) the child stops accepting and drains, so it
 * never lingers as an orphan listener.
 */
import net from 'node:net'
import type { ListenerConfig, LogLevel } from '../config/types.js'
import { GatewayError } from '../errors.js'
import { createLogger, type Logger } from '../log.js'
import type { FromChild, ToChild } from '../supervisor/ipc.js'
import { ignoreTerminalSignals } from '../supervisor/signals.js'
import { ListenerEngine } from './engine.js'

/** Bound on flushing logs and IPC before exit. */
const EXIT_FLUSH_MS = 2_000

let root: Logger | undefined
/** Root logger bound to this listener, for the child's own lifecycle lines. */
let logger: Logger | undefined
let engine: ListenerEngine | undefined
let server: net.Server | undefined
let listener: ListenerConfig | undefined
let stopping = false

function send(msg: FromChild): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve()
    // The callback fires once the message is handed to the channel; an error means the supervisor is gone.
    process.send(msg, undefined, {}, () => resolve())
  })
}

function exit(code: number): void {
  const timer = setTimeout(() => process.exit(code), EXIT_FLUSH_MS)
  timer.unref()
  if (root) root.flush(() => process.exit(code))
  else process.exit(code)
}

async function fatal(err: unknown): Promise<void> {
  const code = err instanceof GatewayError ? err.code : 'GW_ERR_LISTEN'
  const message = err instanceof Error ? err.message : String(err)
  logger?.error({ err, code }, 'listener failed to start')
  await send({ type: 'fatal', code, message })
  exit(1)
}

async function start(msg: Extract<ToChild, { type: 'start' }>, handle: unknown): Promise<void> {
  listener = msg.listener
  const names = listener.routes.map((r) => r.name)
  // The engine binds `route` (and `listener` on a shared listener) on its own child loggers, so it gets the
  // bare root logger; our own lines carry the same fields through `log`, without duplicate keys.
  root = createLogger({ level: msg.log.level, format: msg.log.format })
  logger = root.child(names.length === 1 ? { listener: listener.key, route: names[0] } : { listener: listener.key, routes: names })
  if (!handle) return fatal(new GatewayError('GW_ERR_LISTEN', 'start message carried no listening handle'))
  try {
    engine = await ListenerEngine.create(listener, root)
  } catch (err) {
    return fatal(err)
  }
  // A drain that arrived while certificates were loading wins: never start listening after it.
  if (stopping) return
  const eng = engine
  eng.presetListener(handle)
  server = net.createServer((socket) => eng.handleConnection(socket))
  server.on('error', (err) => {
    if (stopping) return
    void fatal(new GatewayError('GW_ERR_LISTEN', `listen ${listener?.key}: ${err.message}`, { cause: err }))
  })
  server.listen(handle as net.Server, () => {
    logger?.info('listener ready')
    void send({ type: 'ready', pid: process.pid })
  })
}

async function drain(timeoutMs: number, reason: string): Promise<void> {
  if (stopping) return
  stopping = true
  // Close our copy of the listening socket first: the supervisor (and a replacing child) keep theirs, so the
  // port stays open and new clients go to the replacement while our connections finish.
  server?.close()
  const open = engine?.openConnections() ?? 0
  logger?.info({ open, timeoutMs, reason }, 'draining')
  await send({ type: 'draining', open })
  await engine?.drain(timeoutMs)
  if (engine) await send({ type: 'stats', id: -1, final: true, routes: engine.stats(), info: engine.info() })
  await send({ type: 'drained' })
  logger?.info('drained')
  exit(0)
}

async function onMessage(msg: ToChild, handle: unknown): Promise<void> {
  switch (msg.type) {
    case 'start':
      if (listener) return // a second start would mean two engines; the supervisor never sends one
      return start(msg, handle)
    case 'collect':
      if (!engine) return
      return send({ type: 'stats', id: msg.id, routes: engine.stats(), info: engine.info() })
    case 'reload-tls': {
      if (!engine) return
      // The engine logs each outcome (with the route); the supervisor gets the results.
      for (const r of await engine.reloadTls(msg.routes)) {
        await send({ type: 'tls-reloaded', route: r.route, ok: r.ok, message: r.message })
      }
      return
    }
    case 'set-log-level':
      setLevel(msg.level)
      return
    case 'update': {
      if (!engine) return
      try {
        await engine.update(msg.listener)
        listener = msg.listener
        await send({ type: 'updated', id: msg.id, ok: true })
      } catch (err) {
        await send({ type: 'updated', id: msg.id, ok: false, message: (err as Error).message })
      }
      return
    }
    case 'drain':
      return drain(msg.timeoutMs, 'supervisor request')
  }
}

function setLevel(level: LogLevel): void {
  // pino children copy the level when created, so each logger we hold is set.
  if (root) root.level = level
  if (logger) logger.level = level
  engine?.setLogLevel(level)
}

ignoreTerminalSignals()

process.on('message', (msg: ToChild, handle: unknown) => {
  onMessage(msg, handle).catch((err: unknown) => {
    logger?.error({ err, type: msg.type }, 'ipc message failed')
  })
})

process.on('disconnect', () => {
  // The supervisor is gone (crash, SIGKILL). Stop accepting at once; finish what is open within the route's
  // drain timeout, then exit, so nothing outlives the supervisor for long and the port is freed.
  const timeoutMs = Math.max(0, ...(listener?.routes.map((r) => r.drainTimeoutMs) ?? [0]))
  if (!listener) process.exit(0) // an idle spare: nothing to drain
  void drain(timeoutMs, 'supervisor disconnected')
})

if (!process.send) {
  process.stderr.write('gateway child: must be started by the supervisor (no IPC channel)\n')
  process.exit(64)
}
