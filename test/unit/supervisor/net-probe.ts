/** Small TCP client helpers for the supervisor tests (loopback only, every wait bounded). */
import net from 'node:net'

export interface Greeting {
  /** "<routes>@<pid>" written by the fake child. */
  line: string
  socket: net.Socket
}

/** Connects and reads the first line; rejects on refusal, reset or after timeoutMs. */
export function connectAndGreet(port: number, timeoutMs = 5_000): Promise<Greeting> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let buf = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no greeting on port ${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl === -1) return
      clearTimeout(timer)
      socket.removeAllListeners('data')
      resolve({ line: buf.slice(0, nl), socket })
    })
    socket.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

/** Greets once and closes; resolves with the line. */
export async function greetOnce(port: number, timeoutMs?: number): Promise<string> {
  const { line, socket } = await connectAndGreet(port, timeoutMs)
  socket.destroy()
  return line
}

/** Resolves true when a connect is refused (nobody listening), false when it is accepted. */
export function isRefused(port: number, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`connect to ${port} neither accepted nor refused within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.on('connect', () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(false)
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (err.code === 'ECONNREFUSED') resolve(true)
      else reject(err)
    })
  })
}

/**
 * Greets in a loop (one connection at a time) until stop() and reports every outcome, so a test can assert that
 * not a single connection was refused while something changed.
 */
export function greetLoop(port: number) {
  const seen = new Set<string>()
  const failures: string[] = []
  let count = 0
  let running = true
  const done = (async () => {
    while (running) {
      try {
        seen.add(await greetOnce(port, 5_000))
        count++
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
  })()
  return {
    seen,
    failures,
    get count() {
      return count
    },
    async stop() {
      running = false
      await done
    },
  }
}
