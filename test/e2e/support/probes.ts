/** Small process and port probes shared by the end-to-end tests. */
import net from 'node:net'

/** True when a TCP connect to 127.0.0.1:port is refused, false when accepted; rejects if neither within 2 s. */
export function refused(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`connect to ${port} neither accepted nor refused within 2 s`))
    }, 2_000)
    s.on('connect', () => {
      clearTimeout(timer)
      s.destroy()
      resolve(false)
    })
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (err.code === 'ECONNREFUSED') resolve(true)
      else reject(err)
    })
  })
}

/** Whether a process exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
