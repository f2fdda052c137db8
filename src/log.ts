/**
 * The one place loggers are made. JSON lines on stdout by default; `pretty` loads pino-pretty lazily so the
 * JSON path never depends on it. Secrets never reach a logger: the engine only logs fields it picked itself,
 * and redact is a second line of defence for anything that slips through.
 */
import { createRequire } from 'node:module'
import { pino, type Logger } from 'pino'
import type { LogFormat, LogLevel } from './config/types.js'

export type { Logger }

const REDACT = ['password', '*.password', 'authData', '*.authData', 'key', '*.key', 'passphrase', '*.passphrase']

export function createLogger(opts: { level: LogLevel; format?: LogFormat; base?: Record<string, unknown> }): Logger {
  const options = {
    level: opts.level,
    base: { pid: process.pid, ...opts.base },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  }
  if (opts.format === 'pretty') {
    if (prettyAvailable()) {
      return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY } } })
    }
    const logger = pino(options, pino.destination({ fd: 1, sync: false }))
    logger.warn('log.format pretty needs the optional package pino-pretty; logging JSON instead')
    return logger
  }
  return pino(options, pino.destination({ fd: 1, sync: false }))
}

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty')
    return true
  } catch {
    return false
  }
}
