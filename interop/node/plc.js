// Drives the reference did:plc library (@did-plc/lib 0.0.4) for Welkin's
// interop tests. Every command prints one JSON value on stdout; failures
// print a message on stderr and exit 1.
//
//   node plc.js ops                  sign operation histories, print them
//   node plc.js validate-log DID     validate an operation log read on stdin
//   node plc.js validate-audit DID   replay an audit log read on stdin
//   node plc.js client URL           use the library's HTTP client on URL
//
// K-256 keys only: the P-256 signing of @atproto/crypto 0.1.0 predates the
// low-S rule, so half of its P-256 signatures are refused by directories
// that enforce it.
'use strict'

const plc = require('@did-plc/lib')
const { Secp256k1Keypair } = require('@atproto/crypto')
const { cidForCbor } = require('@atproto/common')
const { CID } = require('multiformats/cid')

const PDS = 'https://pds.example.com'

const newKey = () => Secp256k1Keypair.create({ exportable: true })

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

const cidOf = async (op) => (await cidForCbor(op)).toString()

// ops signs three histories with the library and prints, for each step,
// the operation, its CID and the document data the library derives:
//
//   - "updates": genesis, a handle change, a PDS change;
//   - "recovery": the rotation key (listed second) changes the handle and
//     then drops the recovery key; the recovery key (listed first) forks
//     after the handle change, nullifying the key change;
//   - "tombstone": genesis, then a tombstone.
const cmdOps = async () => {
  const recovery = await newKey()
  const rotation = await newKey()
  const signing = await newKey()
  const scenarios = {}

  // Replays ops through the library's directory-side check, the same one
  // the reference server runs on every POST, and records what it derives.
  const build = async (name, did, ops) => {
    const indexed = []
    const steps = []
    const t0 = Date.now()
    for (const [i, op] of ops.entries()) {
      const { nullified } = await plc.assureValidNextOp(did, indexed, op)
      const kept = indexed.filter((e) => !nullified.some((n) => n.equals(e.cid)))
      const cid = await cidForCbor(op)
      kept.push({ did, operation: op, cid, nullified: false, createdAt: new Date(t0 + i) })
      indexed.splice(0, indexed.length, ...kept)
      const chain = indexed.map((e) => e.operation)
      const data = await plc.validateOperationLog(did, chain)
      steps.push({
        op,
        cid: cid.toString(),
        nullifies: nullified.map((n) => n.toString()),
        data,
        document: data ? plc.formatDidDoc(data) : null,
      })
    }
    scenarios[name] = { did, steps, log: indexed.map((e) => e.operation) }
  }

  {
    const { op: genesis, did } = await plc.createOp({
      signingKey: signing.did(),
      handle: 'alice.example.com',
      pds: PDS,
      rotationKeys: [recovery.did(), rotation.did()],
      signer: rotation,
    })
    const handle = await plc.updateHandleOp(genesis, rotation, 'alice2.example.com')
    const pds = await plc.updatePdsOp(handle, rotation, 'https://pds2.example.com')
    await build('updates', did, [genesis, handle, pds])
  }
  {
    const { op: genesis, did } = await plc.createOp({
      signingKey: signing.did(),
      handle: 'bob.example.com',
      pds: PDS,
      rotationKeys: [recovery.did(), rotation.did()],
      signer: rotation,
    })
    const stolen = await plc.updateHandleOp(genesis, rotation, 'mallory.example.com')
    const taken = await plc.updateRotationKeysOp(stolen, rotation, [rotation.did()])
    // The recovery key forks right after "stolen", which nullifies
    // "taken" (signed by the less powerful rotation key).
    const recovered = await plc.updateHandleOp(stolen, recovery, 'bob.example.com')
    await build('recovery', did, [genesis, stolen, taken, recovered])
  }
  {
    const { op: genesis, did } = await plc.createOp({
      signingKey: signing.did(),
      handle: 'carol.example.com',
      pds: PDS,
      rotationKeys: [rotation.did()],
      signer: rotation,
    })
    const tomb = await plc.tombstoneOp(await cidForCbor(genesis), rotation)
    await build('tombstone', did, [genesis, tomb])
  }
  return scenarios
}

// validate-log checks a plain operation log (GET /{did}/log) with the
// library's validateOperationLog.
const cmdValidateLog = async (did) => {
  const ops = await readStdin()
  const data = await plc.validateOperationLog(did, ops)
  return { data, document: data ? plc.formatDidDoc(data) : null }
}

// validate-audit replays an audit log (GET /{did}/log/audit) entry by
// entry through assureValidNextOp, checking each entry's CID and that the
// entries marked nullified are exactly those the library nullifies.
const cmdValidateAudit = async (did) => {
  const entries = await readStdin()
  if (!Array.isArray(entries) || entries.length === 0) {
    throw new Error('audit log is not a non-empty array')
  }
  let indexed = []
  const nullifiedByLib = new Set()
  for (const entry of entries) {
    if (entry.did !== did) {
      throw new Error(`entry ${entry.cid} is for ${entry.did}, not ${did}`)
    }
    const cid = await cidOf(entry.operation)
    if (cid !== entry.cid) {
      throw new Error(`entry cid ${entry.cid}, but the operation hashes to ${cid}`)
    }
    if (Number.isNaN(Date.parse(entry.createdAt))) {
      throw new Error(`entry ${entry.cid} has a bad createdAt ${entry.createdAt}`)
    }
    const { nullified } = await plc.assureValidNextOp(did, indexed, entry.operation)
    for (const n of nullified) nullifiedByLib.add(n.toString())
    indexed = indexed.filter((e) => !nullified.some((n) => n.equals(e.cid)))
    indexed.push({
      did,
      operation: entry.operation,
      cid: CID.parse(entry.cid),
      nullified: false,
      createdAt: new Date(entry.createdAt),
    })
  }
  const marked = entries.filter((e) => e.nullified).map((e) => e.cid)
  const expected = [...nullifiedByLib]
  if (marked.length !== expected.length || !marked.every((c) => nullifiedByLib.has(c))) {
    throw new Error(
      `entries marked nullified ${JSON.stringify(marked)}, library nullifies ${JSON.stringify(expected)}`,
    )
  }
  const data = await plc.validateOperationLog(
    did,
    indexed.map((e) => e.operation),
  )
  return { data, document: data ? plc.formatDidDoc(data) : null, nullified: marked }
}

// client uses the library's own HTTP client (axios underneath) against a
// directory: it creates a DID, changes its handle, and reads everything
// back the way a PDS would.
const cmdClient = async (url) => {
  const client = new plc.Client(url)
  const rotation = await newKey()
  const signing = await newKey()
  const health = await client.health()
  const did = await client.createDid({
    signingKey: signing.did(),
    handle: 'dave.example.com',
    pds: PDS,
    rotationKeys: [rotation.did()],
    signer: rotation,
  })
  await client.updateHandle(did, rotation, 'dave2.example.com')
  await client.updatePds(did, rotation, 'https://pds3.example.com')
  const log = await client.getOperationLog(did)
  const expected = await plc.validateOperationLog(did, log)
  const result = {
    did,
    health,
    expected,
    document: await client.getDocument(did),
    data: await client.getDocumentData(did),
    log,
    lastOp: await client.getLastOp(did),
    audit: await client.getAuditableLog(did),
  }
  // export reads JSON lines; every line must parse.
  result.export = await client.export()
  let notFound = null
  try {
    await client.getDocument('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa')
  } catch (err) {
    notFound = { status: err.status, data: err.data }
  }
  result.notFound = notFound
  // A bad signature must be refused with a client error.
  let refused = null
  try {
    const other = await newKey()
    await client.updateHandle(did, other, 'eve.example.com')
  } catch (err) {
    refused = { status: err.status, data: err.data }
  }
  result.refused = refused
  return result
}

const main = async () => {
  const [cmd, arg] = process.argv.slice(2)
  switch (cmd) {
    case 'ops':
      return cmdOps()
    case 'validate-log':
      return cmdValidateLog(arg)
    case 'validate-audit':
      return cmdValidateAudit(arg)
    case 'client':
      return cmdClient(arg)
    default:
      throw new Error(`unknown command ${cmd}`)
  }
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify(out) + '\n')
  },
  (err) => {
    process.stderr.write(`plc.js: ${err.stack || err}\n`)
    process.exit(1)
  },
)
