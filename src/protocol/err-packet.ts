/**
 * ERR_Packet: 0xFF, error code (2 bytes), '#', SQLSTATE (5 ASCII), message.
 * The '#'+SQLSTATE marker is always written: every client parser tests for it.
 */
import { ERR_HEADER } from './constants.js'

const MAX_MESSAGE_BYTES = 512

export interface ErrPacket {
  code: number
  sqlState?: string
  message: string
}

export function encodeErr(code: number, sqlState: string, message: string): Buffer {
  let text = Buffer.from(message, 'utf8')
  if (text.length > MAX_MESSAGE_BYTES) {
    // Cut on a character boundary: back off over UTF-8 continuation bytes (10xxxxxx) at the cut.
    let end = MAX_MESSAGE_BYTES
    while (end > 0 && (text[end]! & 0xc0) === 0x80) end--
    text = text.subarray(0, end)
  }
  const out = Buffer.alloc(9 + text.length)
  out[0] = ERR_HEADER
  out.writeUInt16LE(code, 1)
  out[3] = 0x23 // '#'
  out.write(sqlState.padEnd(5, '0').slice(0, 5), 4, 'latin1')
  text.copy(out, 9)
  return out
}

/** Parses an ERR payload; the SQLSTATE is absent in pre-4.1 style ERRs such as an ERR greeting. */
export function parseErr(payload: Buffer): ErrPacket {
  if (payload.length < 3 || payload[0] !== ERR_HEADER) return { code: 0, message: '' }
  const code = payload.readUInt16LE(1)
  if (payload.length >= 9 && payload[3] === 0x23) {
    return { code, sqlState: payload.toString('latin1', 4, 9), message: payload.toString('utf8', 9) }
  }
  return { code, message: payload.toString('utf8', 3) }
}

/** Adds the '#08004' marker to an ERR that lacks one (a backend's ERR greeting relayed inside the auth phase). */
export function withSqlState(payload: Buffer, sqlState = '08004'): Buffer {
  const err = parseErr(payload)
  if (err.sqlState !== undefined) return payload
  return encodeErr(err.code, sqlState, err.message)
}
