/**
 * A stand-in for src/proxy/child-main.ts speaking the same IPC, so supervisor tests run without TLS or a
 * database. Every connection gets one line "<routes>@<pid>" and stays open until the client ends it (or a
 * drain times out). Route names pick misbehaviour: "fatal-*" reports a start failure, "mute-*" never gets ready.
 */
import net from 'node:net'
import type { ListenerConfig } from '../../../src/config/types.js'
import type { FromChild, ToChild } from '../../../src/supervisor/ipc.js'

let server: net.Server | undefined
let listener: ListenerConfig | undefined
const sockets = new Set<net.Socket>()

const send = (msg: FromChild) =>
  new Promise<void>((resolve) => (process.connected ? process.send!(msg, undefined, {}, () => resolve()) : resolve()))

for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => {})
process.on('disconnect', () => process.exit(0))

function info() {
  return (listener?.routes ?? []).map((r) => ({ route: r.name, open: sockets.size }))
}

process.on('message', async (msg: ToChild, handle: unknown) => {
  switch (msg.type) {
    case 'start': {
      listener = msg.listener
      const names = listener.routes.map((r) => r.name)
      if (names[0]!.startsWith('fatal')) {
        await send({ type: 'fatal', code: 'GW_ERR_CERT_LOAD', message: 'fake certificate failure' })
        process.exit(1)
      }
      if (names[0]!.startsWith('mute')) return
      server = net.createServer((socket) => {
        sockets.add(socket)
        socket.on('close', () => sockets.delete(socket))
        socket.on('error', () => {})
        socket.on('end', () => socket.end())
        socket.write(`${names.join(',')}@${process.pid}\n`)
      })
      server.listen(handle as net.Server, () => void send({ type: 'ready', pid: process.pid }))
      return
    }
    case 'collect':
      return send({ type: 'stats', id: msg.id, routes: {}, info: info() })
    case 'drain': {
      server?.close()
      await send({ type: 'draining', open: sockets.size })
      const deadline = Date.now() + msg.timeoutMs
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      for (const s of sockets) s.destroy()
      await send({ type: 'stats', id: -1, final: true, routes: {}, info: info() })
      await send({ type: 'drained' })
      process.exit(0)
    }
    // falls through: the switch is exhaustive for the messages this fake reacts to
    default:
      return
  }
})
