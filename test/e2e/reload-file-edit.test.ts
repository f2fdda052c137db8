import { after, before, test } from 'node:test'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { writeInPlace } from './support/config-files.js'
import { addChangeRemove } from './support/reload-scenario.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_edit' })))
after(() => db.close())

test('editing the file in place adds, changes and removes routes; untouched routes keep their child', async () => {
  const configPath = path.join(tmpDir('reload-edit'), 'gateway.yaml')
  await addChangeRemove({ env, account, configPath, save: (text) => writeInPlace(configPath, text) })
})
