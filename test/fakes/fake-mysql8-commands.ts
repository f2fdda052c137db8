/**
 * Command phase of the fake MySQL 8 server: just enough for clients and the gateway to prove a
 * session works after authentication (COM_QUERY text resultsets, COM_PING, COM_INIT_DB,
 * COM_RESET_CONNECTION, COM_STATISTICS). COM_QUIT and COM_CHANGE_USER live in mysql8-server.ts
 * because they end or re-run the connection phase.
 *
 * Resultset layout per the dev docs "Text Resultset": column count, ColumnDefinition41 x n,
 * EOF unless CLIENT_DEPRECATE_EOF, rows, then EOF or (DEPRECATE_EOF) an OK packet with a 0xFE header.
 */
import { CAP, Reader, eofPacket, errPacket, lenencInt, lenencStr, okPacket, u16, u32 } from './fake-mysql8-wire.js'

export const COM = {
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  STATISTICS: 0x09,
  PING: 0x0e,
  CHANGE_USER: 0x11,
  RESET_CONNECTION: 0x1f,
} as const

const TYPE_LONGLONG = 0x08
const TYPE_VAR_STRING = 0xfd
const FLAG_NOT_NULL = 0x0001
const FLAG_BINARY = 0x0080
const CHARSET_BINARY = 63
const CHARSET_UTF8MB4_0900 = 255

export interface SessionView {
  user: string
  database: string
  serverVersion: string
  connectionId: number
  /** client & server capabilities */
  caps: number
}

interface Column {
  name: string
  kind: 'int' | 'string'
}

/** ColumnDefinition41 for a computed column (no table), as MySQL describes `SELECT 1` / `SELECT 'x'`. */
function columnDefinition(col: Column, maxLen: number): Buffer {
  const isInt = col.kind === 'int'
  return Buffer.concat([
    lenencStr('def'),
    lenencStr(''), // schema
    lenencStr(''), // table
    lenencStr(''), // org_table
    lenencStr(col.name),
    lenencStr(''), // org_name
    lenencInt(0x0c), // length of the fixed fields
    u16(isInt ? CHARSET_BINARY : CHARSET_UTF8MB4_0900),
    u32(isInt ? Math.max(1, maxLen) : Math.max(1, maxLen) * 4),
    Buffer.from([isInt ? TYPE_LONGLONG : TYPE_VAR_STRING]),
    u16(isInt ? FLAG_NOT_NULL | FLAG_BINARY : FLAG_NOT_NULL),
    Buffer.from([isInt ? 0 : 0x1f]), // decimals: 31 = "not fixed" for strings
    Buffer.from([0, 0]), // filler
  ])
}

/** All messages of a one-column, one-row text resultset, in order. */
export function textResultset(col: Column, value: string, caps: number): Buffer[] {
  const deprecateEof = (caps & CAP.DEPRECATE_EOF) !== 0
  const msgs: Buffer[] = [lenencInt(1), columnDefinition(col, Buffer.byteLength(value, 'utf8'))]
  if (!deprecateEof) msgs.push(eofPacket())
  msgs.push(lenencStr(value))
  msgs.push(deprecateEof ? okPacket({ header: 0xfe }) : eofPacket())
  return msgs
}

export type CommandReply =
  | { kind: 'messages'; messages: Buffer[]; delayMs?: number }
  | { kind: 'quit' }
  | { kind: 'change-user' }

const MAX_SLEEP_SECONDS = 30

/** Interprets a few statements the way MySQL answers them; anything else is echoed back as one string cell. */
export function answerQuery(sql: string, s: SessionView): { messages: Buffer[]; delayMs?: number } {
  const q = sql.trim().replace(/;\s*$/, '')
  if (q === '') return { messages: [errPacket(1065, '42000', 'Query was empty')] }
  const rs = (name: string, kind: Column['kind'], value: string) => textResultset({ name, kind }, value, s.caps)
  let m: RegExpMatchArray | null
  if ((m = /^select\s+(-?\d{1,15})$/i.exec(q))) return { messages: rs(m[1], 'int', String(Number(m[1]))) }
  if (/^select\s+current_user(\(\))?$/i.test(q)) return { messages: rs('CURRENT_USER()', 'string', `${s.user}@%`) }
  if (/^select\s+user\(\)$/i.test(q)) return { messages: rs('USER()', 'string', `${s.user}@localhost`) }
  if (/^select\s+@@version$/i.test(q)) return { messages: rs('@@version', 'string', s.serverVersion) }
  if (/^select\s+@@version_comment$/i.test(q)) return { messages: rs('@@version_comment', 'string', 'fake MySQL 8 for tests') }
  if (/^select\s+connection_id\(\)$/i.test(q)) return { messages: rs('CONNECTION_ID()', 'int', String(s.connectionId)) }
  if (/^select\s+database\(\)$/i.test(q)) return { messages: rs('DATABASE()', 'string', s.database) }
  if ((m = /^select\s+'([^'\\]*)'$/i.exec(q))) return { messages: rs(m[1], 'string', m[1]) }
  // SLEEP(n) lets gateway tests hold a query in flight; capped so a typo cannot wedge a run.
  if ((m = /^select\s+sleep\((\d+(?:\.\d+)?)\)$/i.exec(q))) {
    const secs = Math.min(Number(m[1]), MAX_SLEEP_SECONDS)
    return { messages: rs(`SLEEP(${m[1]})`, 'int', '0'), delayMs: secs * 1000 }
  }
  if (/^(set|use|begin|start\s+transaction|commit|rollback|do)\b/i.test(q)) return { messages: [okPacket()] }
  return { messages: rs('echo', 'string', q) }
}

/**
 * Decodes one command and produces the server's answer. `payload[0]` is the command byte.
 * COM_QUERY carries query attributes first when CLIENT_QUERY_ATTRIBUTES was negotiated
 * (mysql2 sends `00 01` = no parameters, one set).
 */
export function handleCommand(payload: Buffer, s: SessionView, stats: { questions: number; startedAt: number }): CommandReply {
  const cmd = payload[0]
  switch (cmd) {
    case COM.QUIT:
      return { kind: 'quit' }
    case COM.CHANGE_USER:
      return { kind: 'change-user' }
    case COM.PING:
    case COM.RESET_CONNECTION:
      return { kind: 'messages', messages: [okPacket()] }
    case COM.INIT_DB:
      s.database = payload.subarray(1).toString('utf8')
      return { kind: 'messages', messages: [okPacket()] }
    case COM.STATISTICS: {
      const uptime = Math.floor((Date.now() - stats.startedAt) / 1000)
      // A bare string, no header byte (COM_STATISTICS response).
      return { kind: 'messages', messages: [Buffer.from(`Uptime: ${uptime}  Threads: 1  Questions: ${stats.questions}`)] }
    }
    case COM.QUERY: {
      stats.questions++
      const r = new Reader(payload)
      r.u8()
      if ((s.caps & CAP.QUERY_ATTRIBUTES) !== 0) {
        const paramCount = r.lenencInt()
        r.lenencInt() // parameter_set_count, always 1
        if (paramCount > 0) {
          return { kind: 'messages', messages: [errPacket(1235, '42000', "This version of MySQL doesn't yet support 'query attributes in the fake server'")] }
        }
      }
      const answer = answerQuery(r.rest().toString('utf8'), s)
      return { kind: 'messages', ...answer }
    }
    default:
      return { kind: 'messages', messages: [errPacket(1047, '08S01', 'Unknown command')] }
  }
}

