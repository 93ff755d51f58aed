// Drives the reference TypeScript repository library (@atproto/repo 0.10.14,
// with @atproto/crypto 0.5.5 installed under the alias "atproto-crypto", as
// the top-level @atproto/crypto is the 0.1.0 that plc.js needs) for Welkin's
// interop tests. Every command reads one JSON value on stdin (CAR files as
// base64) and prints one JSON value on stdout; failures print a message on
// stderr and exit 1. CIDs are printed as base32 strings.
//
//   node repo.js read     verify a whole repository CAR made elsewhere and
//                         list its records
//   node repo.js create   make a repository and three one-op commits on it
//   node repo.js diff     check #commit slices made elsewhere
'use strict'

const {
  MST,
  MemoryBlockstore,
  Repo,
  WriteOpAction,
  blocksToCarFile,
  def,
  getFullRepo,
  readCarWithRoot,
  verifyCommitSig,
  verifyDiffCar,
  verifyRepoCar,
} = require('@atproto/repo')
const { Secp256k1Keypair } = require('atproto-crypto')
const { parseCid } = require('@atproto/lex-data')
const { TID } = require('@atproto/common-web')

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

const fromB64 = (s) => new Uint8Array(Buffer.from(s, 'base64'))
const toB64 = (b) => Buffer.from(b).toString('base64')

const concat = async (iter) => {
  const parts = []
  for await (const p of iter) parts.push(p)
  return Buffer.concat(parts)
}

// loadRepo opens a whole repository CAR with the library's own loader.
const loadRepo = async (carBytes) => {
  const { root, blocks } = await readCarWithRoot(carBytes)
  const storage = new MemoryBlockstore(blocks)
  const repo = await Repo.load(storage, root)
  return { root, repo }
}

const listRecords = async (repo) => {
  const records = []
  for await (const r of repo.walkRecords()) {
    records.push({ path: `${r.collection}/${r.rkey}`, cid: r.cid.toString() })
  }
  return records
}

// read: {car, did, didKey} -> the commit as the library reads it, whether
// its signature verifies, and the records. verifyRepoCar checks the whole
// repository again (signature, DID, every record block present).
const cmdRead = async () => {
  const input = await readStdin()
  const carBytes = fromB64(input.car)
  const { root, repo } = await loadRepo(carBytes)
  const verified = await verifyRepoCar(carBytes, input.did, input.didKey)
  const dataCid = await repo.data.getPointer()
  return {
    commit: root.toString(),
    did: repo.did,
    rev: repo.commit.rev,
    version: repo.version,
    data: repo.commit.data.toString(),
    mstRoot: dataCid.toString(),
    sigValid: await verifyCommitSig(repo.commit, input.didKey),
    wrongKeySigValid: await verifyCommitSig(
      repo.commit,
      (await Secp256k1Keypair.create()).did(),
    ),
    verifiedCreates: verified.creates.length,
    leafCount: await repo.data.leafCount(),
    records: await listRecords(repo),
  }
}

const COLLECTIONS = ['app.bsky.feed.post', 'app.bsky.feed.like', 'app.bsky.graph.follow']

const makeRecord = (collection, i) => {
  const createdAt = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString()
  switch (collection) {
    case 'app.bsky.feed.post':
      return { $type: collection, text: `TypeScript post ${i}`, createdAt, langs: ['en'] }
    case 'app.bsky.feed.like':
      return {
        $type: collection,
        subject: {
          uri: `at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vuowo${i % 10}b`,
          cid: 'bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a',
        },
        createdAt,
      }
    default:
      return { $type: collection, subject: `did:plc:follow${String(i).padStart(6, '0')}`, createdAt }
  }
}

const opJSON = (w, cid, prev) => {
  const op = { action: w.action, path: `${w.collection}/${w.rkey}` }
  if (cid) op.cid = cid.toString()
  if (prev) op.prev = prev.toString()
  return op
}

// create: {did, count} -> a repository of count records made by the
// library, its CAR export and signing did:key, and three #commit slices
// (create, update, delete) made on it one after the other with
// formatCommit, each with the repository CAR it applies to.
const cmdCreate = async () => {
  const input = await readStdin()
  if (!(input.count >= 12)) throw new Error('create needs count >= 12')
  const keypair = await Secp256k1Keypair.create({ exportable: true })
  const storage = new MemoryBlockstore()
  const writes = []
  let t = 1767225600000 * 1000
  for (let i = 0; i < input.count; i++) {
    const collection = COLLECTIONS[i % COLLECTIONS.length]
    t += 1017
    writes.push({
      action: WriteOpAction.Create,
      collection,
      rkey: TID.fromTime(t, i % 32).toString(),
      record: makeRecord(collection, i),
    })
  }
  let repo = await Repo.create(storage, input.did, keypair, writes)
  const car = await concat(getFullRepo(storage, repo.cid))
  const out = {
    did: repo.did,
    didKey: keypair.did(),
    commit: repo.cid.toString(),
    rev: repo.commit.rev,
    data: repo.commit.data.toString(),
    car: toB64(car),
    records: await listRecords(repo),
    commits: [],
  }
  const steps = [
    {
      action: WriteOpAction.Create,
      collection: 'app.bsky.feed.post',
      rkey: TID.fromTime(t + 5000, 3).toString(),
      record: makeRecord('app.bsky.feed.post', 100000),
    },
    {
      action: WriteOpAction.Update,
      collection: writes[7].collection,
      rkey: writes[7].rkey,
      record: makeRecord(writes[7].collection, 100001),
    },
    { action: WriteOpAction.Delete, collection: writes[11].collection, rkey: writes[11].rkey },
  ]
  for (const w of steps) {
    const before = await concat(getFullRepo(storage, repo.cid))
    const path = `${w.collection}/${w.rkey}`
    const prev = await repo.data.get(path)
    const prevData = repo.commit.data
    const commit = await repo.formatCommit(w, keypair)
    const slice = await blocksToCarFile(commit.cid, commit.relevantBlocks)
    repo = await repo.applyCommit(commit)
    const cid = w.action === WriteOpAction.Delete ? null : await repo.data.get(path)
    out.commits.push({
      action: w.action,
      before: toB64(before),
      slice: toB64(slice),
      commit: commit.cid.toString(),
      rev: commit.rev,
      prevData: prevData.toString(),
      data: repo.commit.data.toString(),
      ops: [opJSON(w, cid, prev)],
    })
  }
  return out
}

// invert undoes ops on the tree held by the slice alone, as a sync 1.1
// consumer does, and returns the root it finds (or the library's error).
const invert = async (blocks, dataCid, ops) => {
  const storage = new MemoryBlockstore(blocks)
  let mst = MST.load(storage, dataCid)
  for (const op of [...ops].reverse()) {
    if (op.action === 'create') {
      const got = await mst.get(op.path)
      if (!got || got.toString() !== op.cid) throw new Error(`create ${op.path}: tree holds ${got}`)
      mst = await mst.delete(op.path)
    } else if (op.action === 'update') {
      const got = await mst.get(op.path)
      if (!got || got.toString() !== op.cid) throw new Error(`update ${op.path}: tree holds ${got}`)
      mst = await mst.update(op.path, parseCid(op.prev))
    } else if (op.action === 'delete') {
      if (await mst.get(op.path)) throw new Error(`delete ${op.path}: key still present`)
      mst = await mst.add(op.path, parseCid(op.prev))
    } else {
      throw new Error(`unknown action ${op.action}`)
    }
  }
  return (await mst.getPointer()).toString()
}

// diff: {did, didKey, commits: [{before, slice, ops}]} -> for each slice:
//   - the library's diff check (verifyDiffCar against the repository the
//     slice applies to: commit signature, DID, new blocks) and the writes
//     it derives;
//   - the commit as read from the slice alone, its signature, and the
//     root found by inverting the ops on the slice's blocks alone.
const cmdDiff = async () => {
  const input = await readStdin()
  const results = []
  for (const c of input.commits) {
    const res = {}
    const { repo: before } = await loadRepo(fromB64(c.before))
    const sliceBytes = fromB64(c.slice)
    try {
      const diff = await verifyDiffCar(before, sliceBytes, input.did, input.didKey)
      res.writes = diff.writes.map((w) => ({
        action: w.action,
        path: `${w.collection}/${w.rkey}`,
        cid: w.cid ? w.cid.toString() : undefined,
        prev: w.prev ? w.prev.toString() : undefined,
      }))
      res.commit = diff.commit.cid.toString()
    } catch (err) {
      res.diffError = String(err && err.message ? err.message : err)
    }
    const { root, blocks } = await readCarWithRoot(sliceBytes)
    const commit = await new MemoryBlockstore(blocks).readObj(root, def.commit)
    res.sliceCommit = root.toString()
    res.sliceData = commit.data.toString()
    res.sigValid = await verifyCommitSig(commit, input.didKey)
    try {
      res.inverted = await invert(blocks, commit.data, c.ops)
    } catch (err) {
      res.invertError = String(err && err.message ? err.message : err)
    }
    results.push(res)
  }
  return results
}

const commands = { read: cmdRead, create: cmdCreate, diff: cmdDiff }

const main = async () => {
  const cmd = commands[process.argv[2]]
  if (!cmd) throw new Error(`usage: node repo.js ${Object.keys(commands).join('|')}`)
  process.stdout.write(JSON.stringify(await cmd()) + '\n')
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
