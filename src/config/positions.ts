/**
 * Maps a key path in the parsed data (["routes", 1, "tls", "mode"]) back to a line and column in the YAML
 * source, so every problem can be reported as `file:line:col key.path: message`.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml'

export type PathSegment = string | number
export type KeyPath = readonly PathSegment[]

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/

/** `routes[1].tls.mode`; keys that would read ambiguously (dots, spaces) are quoted: `routes[0]["a.b"]`. */
export function formatPath(path: KeyPath): string {
  if (path.length === 0) return '(root)'
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (PLAIN_KEY.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

interface Found {
  /** The key node of the last segment found, when it came from a mapping. */
  key?: Node
  /** The value node of the last segment found. */
  value?: Node
  /** True when every segment was found. */
  complete: boolean
}

export class SourceMap {
  readonly #file: string
  readonly #doc: Document | undefined
  readonly #lines: LineCounter | undefined

  /** `file` is printed as given; `doc`/`lines` are absent when the text never parsed (positions are then 1:1). */
  constructor(file: string, doc?: Document, lines?: LineCounter) {
    this.#file = file
    this.#doc = doc
    this.#lines = lines
  }

  get file(): string {
    return this.#file
  }

  /** `file:line:col` of the value at `path` (or of its key with `onKey`), else of the nearest ancestor found. */
  location(path: KeyPath, opts: { onKey?: boolean } = {}): { line: number; col: number } {
    const found = this.#find(path)
    const node = opts.onKey && found.complete ? (found.key ?? found.value) : (found.value ?? found.key)
    return this.positionOf(node?.range?.[0] ?? 0)
  }

  positionOf(offset: number): { line: number; col: number } {
    return this.#lines ? this.#lines.linePos(offset) : { line: 1, col: 1 }
  }

  /** Whether the YAML text itself spells out `path` (as opposed to it coming from defaults or built-ins). */
  has(path: KeyPath): boolean {
    return this.#find(path).complete
  }

  #find(path: KeyPath): Found {
    let current: Node | undefined = (this.#doc?.contents ?? undefined) as Node | undefined
    let found: Found = { value: current, complete: true }
    for (const seg of path) {
      const next = current ? this.#child(current, seg, 0) : undefined
      if (!next) return { ...found, complete: false }
      found = { key: next.key, value: next.value ?? next.key, complete: true }
      current = next.value
    }
    return found
  }

  #child(node: Node, seg: PathSegment, depth: number): { key?: Node; value?: Node } | undefined {
    // Aliases (`tls: *shared`) and merge keys (`<<: *shared`) make one YAML node stand for data at several
    // paths; positions then point into the anchored original, which is where the operator has to edit.
    // The depth cap keeps a pathological alias chain from looping (the parser already refuses cycles).
    if (depth > 16) return undefined
    if (isAlias(node)) {
      const target = this.#doc ? (node.resolve(this.#doc) as Node | undefined) : undefined
      return target ? this.#child(target, seg, depth + 1) : undefined
    }
    if (isSeq(node)) {
      const item = typeof seg === 'number' ? node.items[seg] : undefined
      return item ? { value: item as Node } : undefined
    }
    if (!isMap(node)) return undefined
    for (const pair of node.items) {
      const key = pair.key as Node | null
      const name = isScalar(key) ? key.value : key
      if (typeof name !== 'symbol' && String(name) === String(seg)) {
        return { key: key ?? undefined, value: (pair.value as Node | null) ?? undefined }
      }
    }
    // Own keys win over merged ones, so merge sources are searched only after the whole mapping.
    for (const pair of node.items) {
      const key = pair.key as Node | null
      if (!isScalar(key) || typeof key.value !== 'symbol' || !pair.value) continue
      const sources = isSeq(pair.value) ? (pair.value.items as Node[]) : [pair.value as Node]
      for (const source of sources) {
        const hit = this.#child(source, seg, depth + 1)
        if (hit) return hit
      }
    }
    return undefined
  }
}

interface Problem {
  line: number
  col: number
  text: string
}

/**
 * Collects problems as `file:line:col key.path: message` lines. Everything is collected (never throw on the
 * first problem): an operator fixing a file wants the whole list at once.
 */
export class Problems {
  readonly #source: SourceMap
  readonly #list: Problem[] = []
  readonly #seen = new Set<string>()

  constructor(source: SourceMap) {
    this.#source = source
  }

  get source(): SourceMap {
    return this.#source
  }

  get size(): number {
    return this.#list.length
  }

  /** A problem with the value at `path`; `onKey` points at the key instead (unknown keys). */
  add(path: KeyPath, message: string, opts: { onKey?: boolean } = {}): void {
    const { line, col } = this.#source.location(path, opts)
    this.#push(line, col, `${this.#source.file}:${line}:${col} ${formatPath(path)}: ${message}`)
  }

  /** A problem that has a position but no key path (YAML syntax). */
  addAt(offset: number, message: string): void {
    const { line, col } = this.#source.positionOf(offset)
    this.#push(line, col, `${this.#source.file}:${line}:${col}: ${message}`)
  }

  #push(line: number, col: number, text: string): void {
    // Aliased data can yield the same message for the same node more than once; report it once.
    if (this.#seen.has(text)) return
    this.#seen.add(text)
    this.#list.push({ line, col, text })
  }

  /** In file order, so the list reads top to bottom like the file. */
  lines(): string[] {
    return [...this.#list].sort((a, b) => a.line - b.line || a.col - b.col).map((p) => p.text)
  }
}
