/**
 * Target E of the bench (--node-hop): the cheapest TCP forwarder Node.js can be, run as its own process.
 * The gateway is a Node.js process too, so what this hop costs per query, connection or MiB on a machine
 * is the floor under the gateway's figures there: whatever the gateway spends above it is TLS and its own
 * logic, whatever is below socat's figures is not Node's doing.
 *
 *   node dist/test/bench/node-hop.js LISTEN_PORT BACKEND_PORT
 *
 * Listens on 127.0.0.1:LISTEN_PORT (0: any free port) and prints the bound port as the first line on
 * stdout; forwards every connection to 127.0.0.1:BACKEND_PORT. Runs until killed.
 */
import net from 'node:net'

function portArg(s: string | undefined, what: string): number {
  const n = Number(s)
  if (s === undefined || !Number.isInteger(n) || n < 0 || n > 65535) {
    process.stderr.write(`usage: node-hop.js LISTEN_PORT BACKEND_PORT (bad ${what}: ${s})\n`)
    process.exit(2)
  }
  return n
}

const listenPort = portArg(process.argv[2], 'listen port')
const backendPort = portArg(process.argv[3], 'backend port')

/**
 * One direction, with the same primitives as the gateway's relay (src/proxy/relay.ts: 'data', write(),
 * pause until 'drain'), so that the gap between E and C is what the gateway adds on top, not a different
 * way of moving bytes. Pausing on a full write buffer stays because without it a fast backend would grow
 * the heap without bound during the bulk load, which would measure GC rather than forwarding.
 */
function copy(src: net.Socket, dst: net.Socket): void {
  src.on('data', (chunk: Buffer) => {
    if (!dst.write(chunk)) src.pause()
  })
  dst.on('drain', () => src.resume())
}

// noDelay on both legs, as socat's `nodelay` and the gateway do: point selects are small request/response
// exchanges, where Nagle's algorithm together with delayed ACKs can stall a write for tens of milliseconds.
const server = net.createServer({ noDelay: true }, (client) => {
  const backend = net.connect({ host: '127.0.0.1', port: backendPort, noDelay: true })
  // No half-close passing: a MySQL client's last bytes are COM_QUIT, already written when its FIN arrives,
  // so tearing both sockets down on the first close is enough and costs the fewest system calls.
  const teardown = () => {
    client.destroy()
    backend.destroy()
  }
  client.on('error', teardown).on('close', teardown)
  backend.on('error', teardown).on('close', teardown)
  copy(client, backend)
  copy(backend, client)
})

server.on('error', (err) => {
  process.stderr.write(`node-hop: ${err.message}\n`)
  process.exit(1)
})

// The same accept backlog as the bench's socat (backlog=1024), so the connection loads compare the hops,
// not the length of their accept queues.
server.listen({ host: '127.0.0.1', port: listenPort, backlog: 1024 }, () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`)
})
