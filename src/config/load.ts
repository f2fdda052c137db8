/**
 * Reads the gateway's YAML file and turns it into a GatewayConfig, or a ConfigError listing every problem as
 * `file:line:col key.path: message`. Stages: YAML syntax -> schema (schemas/gateway.schema.json) ->
 * normalization (defaults, durations, addresses, paths) -> cross-route checks -> certificate files.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { LineCounter, parseDocument, visit } from 'yaml'
import { ConfigError } from '../errors.js'
import { checkListeners, checkRouteNames } from './cross-checks.js'
import { normalizeAdmin, normalizeLog, normalizeRoute, type RouteDraft } from './normalize.js'
import { Problems, SourceMap, type KeyPath } from './positions.js'
import { checkSchema } from './schema.js'
import { checkCiphers, checkTlsFiles } from './tls-files.js'
import type { GatewayConfig } from './types.js'

/** A config file beyond this size is a mistake (a log, a dump), not hundreds of routes. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024

/**
 * Loads, validates and normalizes a config file.
 * @param file path as the operator wrote it; problem lines repeat it as given, `sourcePath` is absolute.
 * @returns a deep-frozen, plain-JSON GatewayConfig.
 * @throws ConfigError GW_ERR_CONFIG_READ when the file cannot be read or is not YAML,
 *   GW_ERR_CONFIG_INVALID when it is YAML but breaks any rule.
 */
export async function loadConfigFile(file: string): Promise<GatewayConfig> {
  const sourcePath = path.resolve(file)
  let text: string
  try {
    text = await readFile(sourcePath, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    const problem = `${file}: cannot read the configuration file (${code})`
    throw new ConfigError('GW_ERR_CONFIG_READ', [problem], { cause: err })
  }
  if (text.length > MAX_CONFIG_BYTES) {
    throw new ConfigError('GW_ERR_CONFIG_READ', [`${file}: larger than 4 MiB; is this the configuration file?`])
  }

  const lines = new LineCounter()
  // merge: YAML 1.1 merge keys (`<<: *shared`) are how operators share blocks between many similar routes.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true })
  const problems = new Problems(new SourceMap(file, doc, lines))
  if (doc.errors.length > 0) {
    for (const error of doc.errors) problems.addAt(error.pos[0], `invalid YAML: ${error.message}`)
    throw new ConfigError('GW_ERR_CONFIG_READ', problems.lines())
  }
  // maxAliasCount bounds alias expansion ("billion laughs"); 100 is yaml's own default, stated on purpose.
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    // toJS throws for an alias whose anchor does not exist, e.g. an unquoted wildcard `[*.example.com]`,
    // and for excessive alias expansion: a problem in the file, not a crash.
    let at: number | undefined
    visit(doc, {
      Alias(_, node) {
        if (node.resolve(doc) !== undefined) return undefined
        at = node.range?.[0] ?? 0
        return visit.BREAK
      },
    })
    const hint = at !== undefined ? ' (quote wildcard server names: "*.example.com")' : ''
    problems.addAt(at ?? 0, `invalid YAML: ${(err as Error).message}${hint}`)
    throw new ConfigError('GW_ERR_CONFIG_READ', problems.lines(), { cause: err })
  }
  if (data === null || data === undefined) {
    problems.add([], 'the file is empty; it needs at least a routes list')
    throw new ConfigError('GW_ERR_CONFIG_INVALID', problems.lines())
  }

  const config = await build(data, sourcePath, problems)
  if (!config || problems.size > 0) throw new ConfigError('GW_ERR_CONFIG_INVALID', problems.lines())
  return deepFreeze(config)
}

async function build(data: unknown, sourcePath: string, problems: Problems): Promise<GatewayConfig | undefined> {
  const schemaErrors = checkSchema(data, problems)
  const broken = (prefix: KeyPath): boolean => schemaErrors.some((p) => prefix.every((seg, i) => p[i] === seg))
  // Beyond the schema, only parts that passed it can be checked. If the root, the routes list or defaults
  // are malformed, every route would inherit the damage, so the schema problems are the whole report; a
  // route with a problem of its own is skipped (its unknown "crt" key would also read as "cert is required").
  if (schemaErrors.some((p) => p.length === 0) || broken(['defaults'])) return undefined
  const raw = data as Record<string, unknown>
  const routes = Array.isArray(raw['routes']) ? raw['routes'] : undefined
  if (!routes) return undefined

  checkRouteNames(routes, problems)
  const drafts: RouteDraft[] = []
  const configDir = path.dirname(sourcePath)
  routes.forEach((_, index) => {
    if (broken(['routes', index])) return
    drafts.push(normalizeRoute(raw, index, configDir, problems))
  })
  const admin = broken(['admin']) ? undefined : normalizeAdmin(raw, problems)
  checkListeners(
    drafts.filter((d) => d.listenOk),
    admin,
    problems
  )
  checkCiphers(drafts, problems)
  await checkTlsFiles(drafts, problems)

  if (schemaErrors.length > 0) return undefined
  const config: GatewayConfig = { sourcePath, log: normalizeLog(raw), routes: drafts.map((d) => d.route) }
  if (admin) config.admin = admin
  return config
}

/**
 * Validation without the throw: what `gateway validate` and a reload need.
 * Errors other than ConfigError (bugs) still throw.
 */
export async function validateConfigFile(
  file: string
): Promise<{ ok: true; config: GatewayConfig } | { ok: false; problems: string[] }> {
  try {
    return { ok: true, config: await loadConfigFile(file) }
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, problems: err.problems }
    throw err
  }
}

/**
 * Absolute paths of every certificate, key and CA file the config uses, without duplicates, in file order:
 * what the supervisor watches to swap TLS material without a restart.
 */
export function watchedFiles(config: GatewayConfig): string[] {
  const files = new Set<string>()
  for (const route of config.routes) {
    for (const file of [route.tls.cert, route.tls.key, route.tls.clientCA, route.backendTls.ca]) {
      if (file !== undefined) files.add(file)
    }
  }
  return [...files]
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
