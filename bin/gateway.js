#!/usr/bin/env node
// The CLI is TypeScript compiled to dist/ by `npm run build` (run automatically by `npm ci` via `prepare`).
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
const entry = new URL('../dist/src/cli/main.js', import.meta.url)
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('gateway: build output missing; run `npm run build` (npm ci does it via prepare)\n')
  process.exit(70)
}
await import(entry.href)
