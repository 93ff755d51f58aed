// Uses the official client, AtpAgent from @atproto/api, against a running
// "welkin devnet" for the interop tests. It reads the devnet's manifest
// (devnet.json) on stdin, logs in as the first account with the password
// the manifest gives, and prints one JSON value on stdout; failures print
// a message on stderr and exit 1.
//
//   node devnet.js post TEXT   post TEXT, then read the post back
//   node devnet.js read URI    read the record at URI
//
// Both print {"handle", "did", "uri", "cid", "value"}: the session's
// identity and the record as com.atproto.repo.getRecord returns it.
'use strict'

const { AtpAgent, AtUri } = require('@atproto/api')

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

const getRecord = async (agent, uri) => {
  const at = new AtUri(uri)
  const res = await agent.com.atproto.repo.getRecord({
    repo: at.host,
    collection: at.collection,
    rkey: at.rkey,
  })
  return res.data
}

const main = async () => {
  const [mode, arg] = process.argv.slice(2)
  if (!['post', 'read'].includes(mode) || !arg) {
    throw new Error('usage: node devnet.js post TEXT | read URI  (devnet.json on stdin)')
  }
  const manifest = await readStdin()
  const service = manifest.services && manifest.services.pds
  const account = manifest.accounts && manifest.accounts[0]
  if (!service || !account) throw new Error('the manifest names no PDS or no account')

  const agent = new AtpAgent({ service })
  await agent.login({ identifier: account.handle, password: account.password })
  const session = agent.session
  if (!session) throw new Error('login returned no session')

  let uri = arg
  if (mode === 'post') {
    const res = await agent.post({ text: arg })
    uri = res.uri
  }
  const rec = await getRecord(agent, uri)
  return { handle: session.handle, did: session.did, uri: rec.uri, cid: rec.cid, value: rec.value }
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify(out) + '\n')
  },
  (err) => {
    process.stderr.write(String((err && err.stack) || err) + '\n')
    process.exit(1)
  },
)
