/**
 * schemas/gateway.schema.json is the single source of truth for the file's shape. This module compiles it
 * once per process and turns ajv's errors into problem lines an operator can act on.
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Ajv2020 from 'ajv/dist/2020.js'
import type { ErrorObject, ValidateFunction } from 'ajv'
import type { KeyPath, PathSegment, Problems } from './positions.js'

const SCHEMA_FILE = path.join('schemas', 'gateway.schema.json')

/**
 * The schema ships next to package.json, not inside dist/: searching upwards finds it from the compiled
 * src/ and test/ trees alike without hard-coding how deep either sits.
 */
export function schemaPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, SCHEMA_FILE)
    if (existsSync(candidate)) return candidate
    dir = path.dirname(dir)
  }
  throw new Error(`${SCHEMA_FILE} not found above ${fileURLToPath(import.meta.url)}`)
}

let cachedSchema: Record<string, unknown> | undefined
let cachedValidator: ValidateFunction | undefined

export function loadSchema(): Record<string, unknown> {
  cachedSchema ??= JSON.parse(readFileSync(schemaPath(), 'utf8')) as Record<string, unknown>
  return cachedSchema
}

function validator(): ValidateFunction {
  if (cachedValidator) return cachedValidator
  // allErrors: the operator gets every problem in one run. verbose: errors carry their parentSchema, which
  // holds our errorMessage. allowUnionTypes: durations and ports are "integer or string".
  const ajv = new Ajv2020.default({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true })
  // errorMessage is an annotation (also shown by editors using the yaml-language-server): no validation.
  ajv.addKeyword('errorMessage')
  cachedValidator = ajv.compile(loadSchema())
  return cachedValidator
}

/**
 * Validates `data` against the schema, adding one problem per error.
 * @returns the key path each problem was reported at (empty when the data conforms), so later checks can
 *   skip the broken parts.
 */
export function checkSchema(data: unknown, problems: Problems): KeyPath[] {
  const validate = validator()
  if (validate(data)) return []
  return (validate.errors ?? []).map((error) => report(error, data, problems))
}

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  null: 'empty',
}

/** Adds the problem for one ajv error; returns the key path it was reported at. */
function report(error: ErrorObject, data: unknown, problems: Problems): KeyPath {
  const at = instancePath(error.instancePath, data)
  const custom = error.parentSchema?.['errorMessage']
  const params = error.params as Record<string, unknown>
  const add = (where: KeyPath, message: string, opts?: { onKey?: boolean }): KeyPath => {
    problems.add(where, message, opts)
    return where
  }
  switch (error.keyword) {
    case 'additionalProperties':
      return add([...at, String(params['additionalProperty'])], 'unknown key', { onKey: true })
    case 'required':
      return add([...at, String(params['missingProperty'])], 'is required')
    case 'enum':
      return add(at, `must be one of ${(params['allowedValues'] as unknown[]).join(', ')}`)
    case 'minItems':
      return add(at, params['limit'] === 1 ? 'must not be empty' : `must have at least ${params['limit']} items`)
    case 'uniqueItems': {
      // The later occurrence is the repeat; ajv's i/j order is an implementation detail.
      const [first, second] = [Number(params['i']), Number(params['j'])].sort((a, b) => a - b)
      return add([...at, second!], `repeats item ${first}`)
    }
    case 'type': {
      if (typeof custom === 'string') return add(at, custom)
      const types = ([] as string[]).concat(params['type'] as string | string[])
      return add(at, `must be ${types.map((t) => TYPE_WORDS[t] ?? t).join(' or ')}`)
    }
    default:
      return add(at, typeof custom === 'string' ? custom : (error.message ?? error.keyword))
  }
}

/** "/routes/1/tls" -> ["routes", 1, "tls"]: array indexes become numbers so they print as [1]. */
function instancePath(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return []
  const out: PathSegment[] = []
  let node: unknown = data
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(node)) {
      const index = Number(seg)
      out.push(index)
      node = node[index]
    } else {
      out.push(seg)
      node = node && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined
    }
  }
  return out
}
