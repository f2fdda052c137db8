/** /proc readers: CPU time and RSS of the processes the bench measures (Linux only). */
import { readFileSync, readdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

let ticks: number | undefined

/** Clock ticks per second (USER_HZ), 100 on every mainstream Linux build. */
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim()) || 100
    } catch {
      ticks = 100
    }
  }
  return ticks
}

export interface CpuTimes {
  /** utime + stime of the process (all its threads), seconds. */
  self: number
  /** cutime + cstime: children it has waited for, seconds. */
  children: number
}

/** CPU seconds of `pid` from /proc/<pid>/stat; undefined if the process is gone. */
export function cpuTimes(pid: number): CpuTimes | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // Fields after the ")" of the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const f = (n: number) => Number(rest[n - 3])
  const hz = clockTicks()
  return { self: (f(14) + f(15)) / hz, children: (f(16) + f(17)) / hz }
}

/** VmRSS of `pid` in bytes; undefined if the process is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** Direct children of `pid` (every thread's list, as /proc/<pid>/task/<tid>/children splits them). */
export function childPids(pid: number): number[] {
  const out = new Set<number>()
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return []
  }
  for (const tid of tasks) {
    try {
      for (const s of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) {
        if (s) out.add(Number(s))
      }
    } catch {
      // thread exited meanwhile
    }
  }
  return [...out]
}

/**
 * CPU seconds of a forking server (socat `fork`): its own time, what it has reaped from exited children,
 * and the time of children still running.
 */
export function treeCpu(pid: number): number | undefined {
  const own = cpuTimes(pid)
  if (!own) return undefined
  let live = 0
  for (const child of childPids(pid)) live += cpuTimes(child)?.self ?? 0
  return own.self + own.children + live
}

/** Command line of `pid`, for logs. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
  } catch {
    return ''
  }
}
