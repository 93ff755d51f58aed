// Reads a Welkin firehose (com.atproto.sync.subscribeRepos) with the
// reference TypeScript stream readers, for the interop tests. Two readers
// run side by side from cursor 0:
//
//   - the Subscription class of @atproto/xrpc-server 0.10.21, each message
//     checked against the published subscribeRepos lexicon (@atproto/api's
//     schemas); for every #commit the CAR slice is read with
//     @atproto/repo's readCarWithRoot and the commit block's signature is
//     checked with verifyCommitSig against the account's did:key;
//   - the Firehose of @atproto/sync 0.1.40, which validates each message,
//     resolves the DID through a PLC directory (plcUrl) and verifies every
//     op of a commit with MST proofs (verifyProofs) before emitting
//     create/update/delete events.
//
//   node firehose.js    read {"service", "plcUrl", "did", "didKey",
//                       "lastSeq", "timeoutMs"} on stdin
//
// Every message or event seen is printed as one JSON line on stdout, with
// "reader": "subscription" or "firehose"; errors the readers report are
// printed as lines with "error". The script exits 0 once both readers have
// handled lastSeq, or when the deadline passes first, after a line with
// "reader": "main" and the error; other failures exit 1 with a message on
// stderr.
'use strict'

const { Subscription } = require('@atproto/xrpc-server')
const { Firehose, MemoryRunner } = require('@atproto/sync')
const { IdResolver } = require('@atproto/identity')
const { Lexicons } = require('@atproto/lexicon')
const { schemas } = require('@atproto/api')
const { MemoryBlockstore, def, readCarWithRoot, verifyCommitSig } = require('@atproto/repo')

const method = 'com.atproto.sync.subscribeRepos'

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const str = (cid) => (cid ? cid.toString() : null)

const describeErr = (err) => {
  let msg = String((err && err.message) || err)
  for (let c = err && err.cause; c; c = c.cause) msg += `: ${c.message || c}`
  return msg
}

// checkCommit reads a #commit message's CAR slice and checks its commit
// block against the message and the account's key.
const checkCommit = async (msg, didKey) => {
  const { root, blocks } = await readCarWithRoot(msg.blocks)
  const commit = await new MemoryBlockstore(blocks).readObj(root, def.commit)
  const missing = msg.ops
    .filter((op) => op.cid && !blocks.has(op.cid))
    .map((op) => op.path)
  return {
    carRoot: root.toString(),
    commitDid: commit.did,
    commitRev: commit.rev,
    commitVersion: commit.version,
    sigValid: await verifyCommitSig(commit, didKey),
    missingRecords: missing,
  }
}

const readSubscription = async (input, abort) => {
  const lex = new Lexicons(schemas)
  const sub = new Subscription({
    service: input.service,
    method,
    signal: abort.signal,
    getParams: () => ({ cursor: 0 }),
    validate: (value) => {
      try {
        return lex.assertValidXrpcMessage(method, value)
      } catch (err) {
        emit({ reader: 'subscription', error: `lexicon validation: ${describeErr(err)}`, value: String(value && value.$type) })
        return undefined
      }
    },
  })
  try {
    for await (const msg of sub) {
      const type = msg.$type.slice(method.length)
      const line = { reader: 'subscription', seq: msg.seq, type }
      switch (type) {
        case '#commit':
          Object.assign(line, {
            repo: msg.repo,
            commit: str(msg.commit),
            rev: msg.rev,
            since: msg.since,
            prevData: str(msg.prevData),
            rebase: msg.rebase,
            tooBig: msg.tooBig,
            blobs: msg.blobs.length,
            time: msg.time,
            ops: msg.ops.map((op) => ({ action: op.action, path: op.path, cid: str(op.cid), prev: str(op.prev) })),
          })
          try {
            Object.assign(line, await checkCommit(msg, input.didKey))
          } catch (err) {
            line.error = `commit check: ${describeErr(err)}`
          }
          break
        case '#identity':
          Object.assign(line, { did: msg.did, handle: msg.handle, time: msg.time })
          break
        case '#account':
          Object.assign(line, { did: msg.did, active: msg.active, status: msg.status, time: msg.time })
          break
      }
      emit(line)
      if (msg.seq >= input.lastSeq) break
    }
  } finally {
    abort.abort()
  }
}

const readFirehose = (input) =>
  new Promise((resolve) => {
    let done = false
    const firehose = new Firehose({
      service: input.service,
      idResolver: new IdResolver({ plcUrl: input.plcUrl }),
      // The runner's cursor passes a seq once its message is handled,
      // whether it verified or not.
      runner: new MemoryRunner({
        startCursor: 0,
        setCursor: (cursor) => {
          if (cursor >= input.lastSeq && !done) {
            done = true
            // destroy waits for start() to return, which is what hands
            // messages to the runner: do not await it here.
            firehose.destroy().then(resolve)
          }
        },
      }),
      subscriptionReconnectDelay: 200,
      handleEvent: async (evt) => {
        const line = { reader: 'firehose', seq: evt.seq, event: evt.event, did: evt.did }
        if (['create', 'update', 'delete'].includes(evt.event)) {
          Object.assign(line, {
            path: `${evt.collection}/${evt.rkey}`,
            rev: evt.rev,
            commit: str(evt.commit),
            cid: str(evt.cid),
            recordType: evt.record ? evt.record.$type : undefined,
          })
        } else if (evt.event === 'identity') {
          line.didDocument = evt.didDocument ? evt.didDocument.id : null
        } else if (evt.event === 'account') {
          Object.assign(line, { active: evt.active, status: evt.status })
        }
        emit(line)
      },
      onError: (err) => emit({ reader: 'firehose', error: `${err.constructor.name}: ${describeErr(err)}` }),
    })
    firehose.start()
  })

const main = async () => {
  const input = await readStdin()
  let timer
  const deadline = new Promise((resolve) => {
    timer = setTimeout(() => {
      emit({ reader: 'main', error: `the readers did not reach seq ${input.lastSeq} within ${input.timeoutMs} ms` })
      resolve()
    }, input.timeoutMs)
  })
  const subAbort = new AbortController()
  try {
    await Promise.race([Promise.all([readSubscription(input, subAbort), readFirehose(input)]), deadline])
  } finally {
    clearTimeout(timer)
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`firehose.js: ${err.stack || err}\n`)
    process.exit(1)
  },
)
