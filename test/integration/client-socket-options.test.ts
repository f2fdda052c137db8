/**
 * ClientSocketOptions on a real listening handle (the kind the supervisor hands a route child): accepted sockets
 * inherit keepalive from the listener, and a change of tcpKeepAlive applied in place (shared listeners) reaches
 * the next accepted socket. `ss -o` shows a keepalive timer only on sockets with SO_KEEPALIVE set.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { ClientSocketOptions } from '../../src/proxy/client-socket-options.js'

const execFileAsync = promisify(execFile)
type CreateHandle = (address: string, port: number, family: number) => unknown

async function acceptedHasKeepalive(port: number, accepted: Promise<net.Socket>, prepare: (s: net.Socket) => void): Promise<boolean> {
  const client = net.connect({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject))
  const socket = await accepted
  prepare(socket)
  try {
    const { stdout } = await execFileAsync('ss', ['-tnoH', 'state', 'established', `( sport = :${port} and dport = :${client.localPort} )`], {
      timeout: 5_000,
    })
    assert.ok(stdout.trim(), 'ss found the accepted socket')
    return /timer:\(keepalive/.test(stdout)
  } finally {
    client.destroy()
    socket.destroy()
  }
}

test('keepalive preset on the listener reaches accepted sockets, and follows setKeepAlive', async () => {
  const handle = (net as unknown as { _createServerHandle: CreateHandle })._createServerHandle('127.0.0.1', 0, 4)
  assert.equal(typeof handle, 'object', 'bound a listening handle')
  const options = new ClientSocketOptions(true)
  options.presetOnListener(handle)
  let next: (s: net.Socket) => void = () => {}
  const server = net.createServer((s) => next(s))
  await new Promise<void>((resolve) => server.listen(handle as net.Server, resolve))
  const port = (server.address() as net.AddressInfo).port
  const accept = () => new Promise<net.Socket>((resolve) => (next = resolve))
  // Nothing is set on the accepted socket itself: whatever ss shows came from the listener.
  const prepare = () => {}
  try {
    assert.equal(await acceptedHasKeepalive(port, accept(), prepare), true, 'on, inherited')
    options.setKeepAlive(false)
    assert.equal(await acceptedHasKeepalive(port, accept(), prepare), false, 'off after setKeepAlive(false)')
    options.setKeepAlive(true)
    assert.equal(await acceptedHasKeepalive(port, accept(), prepare), true, 'on again')
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})

test('without a preset listener each accepted socket gets keepalive itself (and none when it is off)', async () => {
  let next: (s: net.Socket) => void = () => {}
  const server = net.createServer((s) => next(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  const accept = () => new Promise<net.Socket>((resolve) => (next = resolve))
  try {
    const on = new ClientSocketOptions(true)
    assert.equal(await acceptedHasKeepalive(port, accept(), (s) => on.applyTo(s)), true)
    const off = new ClientSocketOptions(false)
    assert.equal(await acceptedHasKeepalive(port, accept(), (s) => off.applyTo(s)), false)
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})
