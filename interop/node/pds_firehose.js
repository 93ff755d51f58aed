// Consumes a PDS's com.atproto.sync.subscribeRepos with the Firehose of
// @atproto/sync, for the interop tests. The Firehose checks every message
// against the published lexicon, resolves each account's DID through the
// PLC directory given, and verifies every op of a #commit (the commit's
// signature and an MST proof of each op, with verifyProofs) before it
// emits create, update and delete events; ops that do not verify are
// dropped without an error, so the test compares what was emitted with
// what was written.
//
//   node pds_firehose.js
//
// stdin carries two JSON lines: first {"service", "plcUrl", "timeoutMs"}
// (service is the ws:// base URL; reading starts at cursor 0 at once),
// later {"lastSeq": N}, once the writer knows the last event to wait for.
// Every event is printed as one JSON line on stdout; errors the Firehose
// reports are lines with "error". The script exits 0 once the events up to
// lastSeq are handled, or when timeoutMs passes after lastSeq arrived,
// after a line with "error"; other failures exit 1 with a message on
// stderr.
'use strict'

const readline = require('node:readline')
const { Firehose, MemoryRunner } = require('@atproto/sync')
const { IdResolver } = require('@atproto/identity')

// resolveTimeoutMs bounds one DID lookup in the PLC directory.
const resolveTimeoutMs = 30000

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const str = (cid) => (cid ? cid.toString() : null)

const describeErr = (err) => {
  let msg = String((err && err.message) || err)
  for (let c = err && err.cause; c; c = c.cause) msg += `: ${c.message || c}`
  return msg
}

const main = async () => {
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  const first = await lines.next()
  if (first.done) throw new Error('no configuration on stdin')
  const input = JSON.parse(first.value)

  let lastSeq = Infinity
  let cursor = -1
  let finish
  const finished = new Promise((resolve) => {
    finish = resolve
  })

  const firehose = new Firehose({
    service: input.service,
    // The resolver's default 3 s bound on a DID lookup is too short on a
    // busy test machine, where this process verifies a burst of events
    // while its lookups wait; a lookup that times out loses the event.
    idResolver: new IdResolver({ plcUrl: input.plcUrl, timeout: resolveTimeoutMs }),
    // Handles under .test resolve nowhere; the signatures and proofs are
    // what this test is about.
    unauthenticatedHandles: true,
    runner: new MemoryRunner({
      startCursor: 0,
      // The cursor passes a seq once its message is handled, verified or
      // not.
      setCursor: (c) => {
        cursor = c
        if (cursor >= lastSeq) finish()
      },
    }),
    subscriptionReconnectDelay: 200,
    handleEvent: async (evt) => {
      const line = { seq: evt.seq, event: evt.event, did: evt.did }
      switch (evt.event) {
        case 'create':
        case 'update':
        case 'delete':
          Object.assign(line, {
            path: `${evt.collection}/${evt.rkey}`,
            rev: evt.rev,
            commit: str(evt.commit),
            cid: str(evt.cid),
            recordType: evt.record ? evt.record.$type : undefined,
          })
          break
        case 'identity':
          Object.assign(line, { didDocument: evt.didDocument ? evt.didDocument.id : null })
          break
        case 'account':
          Object.assign(line, { active: evt.active, status: evt.status })
          break
        case 'sync':
          Object.assign(line, { rev: evt.rev, commit: str(evt.cid) })
          break
      }
      emit(line)
    },
    onError: (err) => emit({ error: `${err.constructor.name}: ${describeErr(err)}` }),
  })
  // start() resolves only when the Firehose is destroyed.
  const running = firehose.start()

  const second = await lines.next()
  if (second.done) throw new Error('stdin closed before lastSeq arrived')
  lastSeq = JSON.parse(second.value).lastSeq
  if (cursor >= lastSeq) finish()
  let timer
  const deadline = new Promise((resolve) => {
    timer = setTimeout(() => {
      emit({ error: `the Firehose did not reach seq ${lastSeq} within ${input.timeoutMs} ms (cursor ${cursor})` })
      resolve()
    }, input.timeoutMs)
  })
  await Promise.race([finished, deadline])
  clearTimeout(timer)
  await firehose.destroy()
  await running
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`pds_firehose.js: ${err.stack || err}\n`)
    process.exit(1)
  },
)
