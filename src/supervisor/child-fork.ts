/**
 * How route children are forked. Besides the IPC channel (JSON, so a listening handle can travel with a
 * message), each child gets two memory settings measured in BENCHMARKS.md: after a burst of connections a child
 * with Node's defaults stays near 100 MiB with nothing open, because V8 keeps a young generation grown to 3 x
 * 16 MiB and glibc keeps per-thread malloc arenas; with a 1 MiB semi-space and two arenas it settles near 60 MiB,
 * for more frequent minor GCs on connection churn (a few percent of the CPU per new connection; queries and bulk
 * reads allocate too little to notice). An operator's own choice (NODE_OPTIONS, execArgv or the environment)
 * wins over ours.
 */
import { fork, type ChildProcess, type ForkOptions } from 'node:child_process'

const SEMI_SPACE_FLAG = '--max-semi-space-size'
const CHILD_SEMI_SPACE_MIB = 1
const CHILD_MALLOC_ARENAS = '2'

export function childForkOptions(execArgv: readonly string[], env: NodeJS.ProcessEnv): ForkOptions {
  const chosen = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith(SEMI_SPACE_FLAG))
  return {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
    execArgv: chosen ? [...execArgv] : [...execArgv, `${SEMI_SPACE_FLAG}=${CHILD_SEMI_SPACE_MIB}`],
    env: { ...env, MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? CHILD_MALLOC_ARENAS },
  }
}

export function forkRouteChild(entry: string): ChildProcess {
  return fork(entry, [], childForkOptions(process.execArgv, process.env))
}
