/** The bench's progress log: on stderr, so that stdout carries nothing but the report. */
export const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`)
