/**
 * Derives the README's configuration reference from the schema's titles, descriptions and defaults, so the
 * documentation is written once, in the schema. `node dist/src/config/reference.js` prints the table;
 * test/unit/config/readme-reference.test.ts fails when README and schema list different keys.
 */
import { pathToFileURL } from 'node:url'
import { loadSchema } from './schema.js'

type SchemaNode = Record<string, unknown>

export interface ReferenceEntry {
  /** `routes[].tls.mode` */
  key: string
  type: string
  /** Rendered default, "required", or "" for optional keys without one. */
  default: string
  description: string
}

/** $defs whose meaning is better named than spelled out ("integer or string" says nothing). */
const NAMED_TYPES: Record<string, string> = { duration: 'duration', listenAddress: 'address', path: 'path' }

function resolve(root: SchemaNode, node: SchemaNode): { node: SchemaNode; refName?: string } {
  const ref = node['$ref']
  if (typeof ref !== 'string') return { node }
  const name = ref.replace(/^#\/\$defs\//, '')
  const target = (root['$defs'] as Record<string, SchemaNode>)[name]
  if (!target) throw new Error(`unresolved $ref ${ref}`)
  // Keywords beside a $ref (title, description, default) describe this use of the definition.
  const inner = resolve(root, target)
  const { $ref: _ref, ...siblings } = node
  return { node: { ...inner.node, ...siblings }, refName: inner.refName ?? name }
}

function typeOf(node: SchemaNode, refName: string | undefined): string {
  if (refName && NAMED_TYPES[refName]) return NAMED_TYPES[refName]!
  if (Array.isArray(node['enum'])) return node['enum'].map((v) => `\`${String(v)}\``).join(' \\| ')
  const type = node['type']
  if (type === 'object') return 'mapping'
  if (type === 'array') {
    const items = node['items'] as SchemaNode | undefined
    return items?.['type'] === 'string' ? 'list of strings' : 'list of mappings'
  }
  return String(type)
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

/** Every key path of the schema, parents before children, in schema order. */
export function referenceEntries(schema: SchemaNode = loadSchema()): ReferenceEntry[] {
  const out: ReferenceEntry[] = []
  const walk = (raw: SchemaNode, prefix: string): void => {
    const { node } = resolve(schema, raw)
    if (node['type'] === 'array' && node['items']) return walk(node['items'] as SchemaNode, `${prefix}[]`)
    const properties = node['properties'] as Record<string, SchemaNode> | undefined
    if (!properties) return
    const required = new Set((node['required'] as string[] | undefined) ?? [])
    for (const [name, child] of Object.entries(properties)) {
      const key = prefix === '' ? name : `${prefix}.${name}`
      const { node: resolved, refName } = resolve(schema, child)
      const dflt = resolved['default']
      const rendered = dflt === undefined ? '' : `\`${JSON.stringify(dflt).replace(/^"|"$/g, '')}\``
      out.push({
        key,
        type: typeOf(resolved, refName),
        default: required.has(name) ? 'required' : rendered,
        description: String(resolved['description'] ?? resolved['title'] ?? ''),
      })
      walk(child, key)
    }
  }
  walk(schema, '')
  return out
}

/** The markdown table placed in the README's config-reference section. */
export function renderReferenceTable(entries: readonly ReferenceEntry[] = referenceEntries()): string {
  const rows = entries.map((e) => `| \`${e.key}\` | ${e.type} | ${e.default} | ${cell(e.description)} |`)
  return ['| Key | Type | Default | Description |', '| --- | --- | --- | --- |', ...rows].join('\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${renderReferenceTable()}\n`)
}
