import { after, before, test } from 'node:test'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { writeInPlace } from './support/config-files.js'
import { addChangeRemove } from './support/reload-scenario.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_hup' })))
after(() => db.close())

test('SIGHUP reloads: add, change, remove (and the file watch does not reload the same content again)', async () => {
  const configPath = path.join(tmpDir('reload-sighup'), 'gateway.yaml')
  await addChangeRemove({ env, account, configPath, trigger: 'SIGHUP', save: (text) => writeInPlace(configPath, text) })
})
