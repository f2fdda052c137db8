import { after, before, test } from 'node:test'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { writeAtomic } from './support/config-files.js'
import { addChangeRemove } from './support/reload-scenario.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_rename' })))
after(() => db.close())

test('atomic save (temp file renamed over the config) reloads every time', async () => {
  const configPath = path.join(tmpDir('reload-rename'), 'gateway.yaml')
  await addChangeRemove({ env, account, configPath, save: (text) => writeAtomic(configPath, text) })
})
