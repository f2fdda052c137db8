/**
 * Per-step CPU of the proxy and of mariadbd, read from /proc before and after the measured part of a step.
 * The client's own CPU is never counted: it shares the machine but is not what is compared.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Proc } from './processes.js'
import { childPids, cpuTimes, treeCpu } from './procstat.js'
import { proxyOf, type Env, type TargetId } from './targets.js'

/** CPU seconds of what is measured for a target: the gateway's route child, socat with its children, the Node.js hop. */
function proxyCpuNow(proc: Proc | undefined): number | undefined {
  if (!proc) return undefined
  if (proc.name === 'socat') return treeCpu(proc.measuredPid)
  return cpuTimes(proc.measuredPid)?.self
}

async function settleProxy(proc: Proc | undefined): Promise<void> {
  // socat's per-connection children must have exited and been reaped so their time is in cutime.
  if (proc?.name !== 'socat') return
  const deadline = Date.now() + 3_000
  while (childPids(proc.measuredPid).length > 0 && Date.now() < deadline) await sleep(20)
}

export interface Meter {
  start(): void
  stop(): Promise<{ proxyCpu?: number; dbCpu: number }>
}

export function meter(env: Env, target: TargetId): Meter {
  const proc = proxyOf(env, target)
  let p0: number | undefined
  let d0 = 0
  let started = false
  return {
    start() {
      started = true
      p0 = proxyCpuNow(proc)
      d0 = cpuTimes(env.db.pid)?.self ?? 0
    },
    async stop() {
      if (!started) throw new Error('meter stopped before it started')
      await settleProxy(proc)
      const p1 = proxyCpuNow(proc)
      const d1 = cpuTimes(env.db.pid)?.self ?? 0
      if (proc && (p0 === undefined || p1 === undefined)) throw new Error(`${proc.name} process (pid ${proc.measuredPid}) is gone`)
      return { proxyCpu: proc ? p1! - p0! : undefined, dbCpu: d1 - d0 }
    },
  }
}
