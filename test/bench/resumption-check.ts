/**
 * A check, not a measurement: the "TLS resumed" load offers session tickets the way mysql2 does, and this
 * confirms, in every run, that mysql2 really resumes against B and C, so the resumed row describes what a
 * real driver gets.
 */
import { endpoint, TARGET_LABEL, type Env } from './targets.js'

/**
 * Does mysql2 resume TLS sessions? It keeps sessions per `ssl` options object (lib/tls_session_cache.js),
 * so three connections sharing one object should resume from the second on; one object each never does.
 */
export async function mysql2Resumes(env: Env): Promise<string> {
  const { default: mysql } = await import('mysql2/promise')
  const parts: string[] = []
  for (const t of ['tls', 'gateway'] as const) {
    const ep = endpoint(env, t)
    const shared = { ca: env.caPem }
    const seen: string[] = []
    for (const mode of ['shared', 'fresh'] as const) {
      const flags: boolean[] = []
      for (let i = 0; i < 3; i++) {
        const conn = await mysql.createConnection({
          host: ep.host,
          port: ep.port,
          user: env.user,
          password: env.password,
          database: 'sbtest',
          ssl: mode === 'shared' ? shared : { ca: env.caPem },
          connectTimeout: 10_000,
        })
        // The promise wrapper keeps the core connection in .connection (not in its typings); its stream is the TLSSocket.
        const stream = (conn as unknown as { connection: { stream: { isSessionReused?: () => boolean } } }).connection.stream
        flags.push(Boolean(stream.isSessionReused?.()))
        await conn.end()
      }
      seen.push(`${mode} ssl object ${flags.map((f) => (f ? 'R' : 'F')).join('')}`)
    }
    parts.push(`${TARGET_LABEL[t]}: ${seen.join(', ')}`)
  }
  return `mysql2 resumption check (3 connections each; R = resumed, F = full handshake): ${parts.join('; ')}`
}
