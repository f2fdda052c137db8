import { after, before, test } from 'node:test'
import path from 'node:path'
import { testEnv, tmpDir } from '../helpers/env.js'
import { createAccount, harnessMariaDb, type Account } from '../helpers/mariadb.js'
import { configMapVolume } from './support/config-files.js'
import { addChangeRemove } from './support/reload-scenario.js'

const env = testEnv()
const db = harnessMariaDb(env)
let account: Account
before(async () => (account = await createAccount(db, { user: 'e2e_cm' })))
after(() => db.close())

test('Kubernetes ConfigMap update (..data symlink swap) reloads', async () => {
  const dir = path.join(tmpDir('reload-configmap'), 'config')
  const configPath = path.join(dir, 'gateway.yaml')
  let volume: Awaited<ReturnType<typeof configMapVolume>> | undefined
  await addChangeRemove({
    env,
    account,
    configPath,
    async save(text) {
      if (!volume) volume = await configMapVolume(dir, { 'gateway.yaml': text })
      else await volume.update({ 'gateway.yaml': text })
    },
  })
})
