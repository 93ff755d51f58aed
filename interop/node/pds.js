// Drives a PDS with the official TypeScript client (@atproto/api's
// AtpAgent) for the interop tests: the same scenario runs against Welkin's
// PDS and against the reference PDS, and the test compares what the
// client saw.
//
//   node pds.js URL    run the scenario against the PDS at URL
//
// The PDS must be fresh: the scenario creates the accounts alice.test and
// bob.test. It signs up both, logs in, refreshes and revokes sessions,
// writes posts, likes, follows and a profile with an uploaded avatar,
// applies a batch of 50 writes, reads everything back (getRecord,
// listRecords page by page, describeRepo, sync.getRecord, getBlob), fetches
// each repository with sync.getRepo and verifies it with @atproto/repo
// (verifyRepoCar: MST, records and the commit signature against the key in
// the account's DID document), and makes a series of calls that must fail.
//
// It prints one JSON document on stdout:
//
//   {"steps": [...], "meta": {...}}
//
// steps lists every call in order as {"step", "ok": true, "value"} or
// {"step", "ok": false, "error": {"class", "error", "status"}}. Values are
// normalized so that two servers can be compared: object keys are sorted,
// the accounts' DIDs become "<did:alice>" and "<did:bob>", other DIDs,
// CIDs and TIDs become numbered placeholders ("<cid#3>", "<tid#7>") in
// order of first appearance (so equal values stay equal), and timestamps,
// tokens, keys and the server's own URL and DID become fixed placeholders.
// Error messages are left out: they are prose, free to differ. Checks the
// script makes itself (record CIDs recomputed from the returned values,
// records listed against the verified repository, blob bytes) are steps
// too, whose values say what was found.
//
// meta is not normalized and not compared: the raw DIDs, the final revs
// and the number of commits each account made, for the firehose test.
//
// Failures of the script itself print a message on stderr and exit 1.
'use strict'

const crypto = require('node:crypto')
const zlib = require('node:zlib')
const { AtpAgent, XRPCError } = require('@atproto/api')
const { verifyRepoCar, verifyRecords } = require('@atproto/repo')
const { getKey } = require('@atproto/identity')
const { cidForLex } = require('@atproto/lex-cbor')
const { jsonToLex } = require('@atproto/lex-json')
const { ifCid } = require('@atproto/lex-data')

const POST = 'app.bsky.feed.post'
const LIKE = 'app.bsky.feed.like'
const FOLLOW = 'app.bsky.graph.follow'
const PROFILE = 'app.bsky.actor.profile'

// batchSize is the number of creates in the applyWrites batch; pageSize
// the listRecords page size used to walk it.
const batchSize = 50
const pageSize = 20

// createdAt gives the scenario's records fixed timestamps, so that the
// same record has the same CID on every server.
const createdAt = (i) => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString()

// ---- a small PNG, made here so the avatar is a real image -------------

const pngChunk = (type, body) => {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(body.length)
  const tb = Buffer.from(type, 'ascii')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([tb, body])) >>> 0)
  return Buffer.concat([len, tb, body, crc])
}

// makePNG draws an 8x8 RGB gradient.
const makePNG = () => {
  const w = 8
  const h = 8
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(w, 0)
  ihdr.writeUInt32BE(h, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // colour type: RGB
  const rows = []
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + w * 3) // filter byte 0, then pixels
    for (let x = 0; x < w; x++) {
      row[1 + x * 3] = x * 32
      row[2 + x * 3] = y * 32
      row[3 + x * 3] = 0x80
    }
    rows.push(row)
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    pngChunk('IEND', Buffer.alloc(0)),
  ])
}

// ---- tokens the server never issued -----------------------------------

const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url')

// forgeJWT signs an access-token-shaped JWT with a secret the server does
// not know.
const forgeJWT = (payload) => {
  const head = b64url({ typ: 'at+jwt', alg: 'HS256' }) + '.' + b64url(payload)
  const sig = crypto.createHmac('sha256', crypto.randomBytes(32)).update(head).digest('base64url')
  return head + '.' + sig
}

// jwtClaims returns the claim names of a JWT and the types of their values.
const jwtClaims = (jwt) => {
  const payload = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'))
  const out = {}
  for (const k of Object.keys(payload).sort()) out[k] = typeof payload[k]
  return out
}

// ---- results -----------------------------------------------------------

// plain turns what the client returns (CID objects, BlobRefs, bytes) into
// the JSON data model.
const plain = (v) => {
  if (v === null || v === undefined) return v === undefined ? null : v
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') }
  const cid = ifCid(v)
  if (cid) return { $link: cid.toString() }
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === 'object') {
    if (typeof v.toJSON === 'function') return plain(v.toJSON())
    const out = {}
    for (const [k, x] of Object.entries(v)) {
      if (x !== undefined) out[k] = plain(x)
    }
    return out
  }
  return v
}

const describeError = (err) => {
  if (err instanceof XRPCError) {
    return { class: err.constructor.name, error: err.error, status: err.status }
  }
  // Not an error the server sent: the client refused the response (or the
  // scenario broke). The message is kept, since it is the client's.
  return { class: err.constructor.name, message: String(err.message || err) }
}

const steps = []

// step runs fn and records its result; it returns the raw value (or
// undefined when fn threw) so the scenario can go on from it.
const step = async (name, fn) => {
  try {
    const v = await fn()
    steps.push({ step: name, ok: true, value: plain(v === undefined ? null : v) })
    return v
  } catch (err) {
    steps.push({ step: name, ok: false, error: describeError(err) })
    return undefined
  }
}

// mustStep is step for calls the rest of the scenario depends on.
const mustStep = async (name, fn) => {
  const v = await step(name, fn)
  if (v === undefined) {
    const last = steps[steps.length - 1]
    throw new Error(`${name} failed: ${JSON.stringify(last.error)}`)
  }
  return v
}

// ---- normalization -----------------------------------------------------

const reDID = /did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.%-]+|key:z[1-9A-HJ-NP-Za-km-z]+)/g
const reCID = /\bbaf[a-z2-7]{50,}\b/g
const reTIDStr = '[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}'
const reTIDOnly = new RegExp(`^${reTIDStr}$`)
const reTIDInURI = new RegExp(`(at://[^/]+/[^/]+/)(${reTIDStr})$`)
const reDatetime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/
const reJWT = /^eyJ[\w-]+\.[\w-]+\.[\w-]*$/

const makeNormalizer = (serviceURL, names) => {
  const numbered = { did: new Map(), cid: new Map(), tid: new Map() }
  const label = (kind, v) => {
    const m = numbered[kind]
    if (!m.has(v)) m.set(v, `<${kind}#${m.size + 1}>`)
    return m.get(v)
  }
  const host = new URL(serviceURL).host
  const str = (s, key) => {
    if (key === 'publicKeyMultibase') return '<multibase>'
    if (reJWT.test(s)) return '<jwt>'
    if (reDatetime.test(s)) return '<datetime>'
    if (reTIDOnly.test(s)) return label('tid', s)
    s = s.split(serviceURL).join('<pds-url>').split(host).join('<pds-host>')
    s = s.replace(reDID, (d) => {
      if (names.has(d)) return `<did:${names.get(d)}>`
      if (d.startsWith('did:web:')) return '<did:web>'
      if (d.startsWith('did:key:')) return '<did:key>'
      return label('did', d)
    })
    s = s.replace(reCID, (c) => label('cid', c))
    s = s.replace(reTIDInURI, (_, pre, tid) => pre + label('tid', tid))
    return s
  }
  const walk = (v, key) => {
    if (typeof v === 'string') return str(v, key)
    if (Array.isArray(v)) return v.map((x) => walk(x, key))
    if (v && typeof v === 'object') {
      const out = {}
      for (const k of Object.keys(v).sort()) out[str(k)] = walk(v[k], k)
      return out
    }
    return v
  }
  return walk
}

// ---- the scenario ------------------------------------------------------

const rkeyOf = (uri) => uri.split('/').pop()

// signingKeyOf finds the repository signing key (as a did:key) in the DID
// document createAccount returned. Without one, the verifications below
// would skip the signature check, so its absence is an error.
const signingKeyOf = (account) => {
  const key = account.didDoc && getKey(account.didDoc)
  if (!key) throw new Error(`no signing key in the DID document of ${account.handle}`)
  return key
}

const main = async () => {
  const [service] = process.argv.slice(2)
  if (!service) throw new Error('usage: node pds.js URL')
  const meta = { accounts: {}, commits: {}, revs: {} }
  // wrote counts the commits each account's successful writes made.
  const wrote = (did) => {
    meta.commits[did] = (meta.commits[did] || 0) + 1
  }

  const anon = new AtpAgent({ service })
  const alice = new AtpAgent({ service })
  const bob = new AtpAgent({ service })
  const accounts = {
    alice: { agent: alice, handle: 'alice.test', email: 'alice@example.com', password: 'alice-password-1' },
    bob: { agent: bob, handle: 'bob.test', email: 'bob@example.com', password: 'bob-password-2' },
  }

  const server = await mustStep('describeServer', async () => (await anon.com.atproto.server.describeServer()).data)

  // Sign-up.
  for (const [name, a] of Object.entries(accounts)) {
    const res = await mustStep(`createAccount ${name}`, async () => {
      const r = await a.agent.createAccount({ handle: a.handle, email: a.email, password: a.password })
      return r.data
    })
    a.did = res.did
    a.didDoc = res.didDoc
    meta.accounts[name] = res.did
    wrote(res.did)
  }
  const aliceDID = accounts.alice.did
  const bobDID = accounts.bob.did
  await step('createAccount handle taken', async () =>
    (await anon.com.atproto.server.createAccount({ handle: 'alice.test', email: 'other@example.com', password: 'x-password' })).data)
  await step('createAccount email taken', async () =>
    (await anon.com.atproto.server.createAccount({ handle: 'carol.test', email: 'alice@example.com', password: 'x-password' })).data)
  await step('createAccount unsupported domain', async () =>
    (await anon.com.atproto.server.createAccount({ handle: 'carol.example.org', email: 'carol@example.com', password: 'x-password' })).data)
  await step('createAccount invalid handle', async () =>
    (await anon.com.atproto.server.createAccount({ handle: 'bad_handle!.test', email: 'carol@example.com', password: 'x-password' })).data)

  // Sessions.
  const alice2 = new AtpAgent({ service })
  const login = await mustStep('login alice by handle', async () =>
    (await alice2.login({ identifier: 'alice.test', password: accounts.alice.password })).data)
  await step('access token claims', async () => jwtClaims(login.accessJwt))
  await step('refresh token claims', async () => jwtClaims(login.refreshJwt))
  await step('login bob by email', async () =>
    (await new AtpAgent({ service }).login({ identifier: 'bob@example.com', password: accounts.bob.password })).data)
  await step('login bob by DID', async () =>
    (await new AtpAgent({ service }).login({ identifier: bobDID, password: accounts.bob.password })).data)
  await step('getSession', async () => (await alice.com.atproto.server.getSession()).data)
  const oldRefresh = alice.session.refreshJwt
  await mustStep('refreshSession', async () => (await alice.sessionManager.refreshSession()).data)
  await step('refreshSession rotated the tokens', async () => alice.session.refreshJwt !== oldRefresh)
  await step('getSession after refresh', async () => (await alice.com.atproto.server.getSession()).data)
  const revoked = alice2.session.refreshJwt
  await step('deleteSession', async () => {
    await alice2.logout()
    return alice2.session === undefined
  })

  // Posts: create, edit, delete.
  const posts = []
  for (let i = 0; i < 3; i++) {
    const p = await mustStep(`post ${i}`, async () => alice.post({ text: `post number ${i}`, createdAt: createdAt(i) }))
    wrote(aliceDID)
    posts.push(p)
  }
  for (const [i, p] of posts.entries()) {
    const rec = await step(`getRecord post ${i}`, async () =>
      (await alice.com.atproto.repo.getRecord({ repo: aliceDID, collection: POST, rkey: rkeyOf(p.uri) })).data)
    await step(`getRecord post ${i} CID matches its value`, async () =>
      (await cidForLex(jsonToLex(plain(rec.value)))).toString() === rec.cid)
  }
  const edited = await mustStep('putRecord edits post 0', async () => {
    const r = await alice.com.atproto.repo.putRecord({
      repo: aliceDID,
      collection: POST,
      rkey: rkeyOf(posts[0].uri),
      swapRecord: posts[0].cid,
      record: { $type: POST, text: 'post number 0, edited', createdAt: createdAt(0) },
    })
    return r.data
  })
  wrote(aliceDID)
  await step('getRecord edited post', async () =>
    (await alice.com.atproto.repo.getRecord({ repo: aliceDID, collection: POST, rkey: rkeyOf(posts[0].uri) })).data)
  await step('deleteRecord post 1', async () => {
    const r = await alice.com.atproto.repo.deleteRecord({ repo: aliceDID, collection: POST, rkey: rkeyOf(posts[1].uri) })
    wrote(aliceDID)
    return r.data
  })
  await step('getRecord deleted post', async () =>
    (await alice.com.atproto.repo.getRecord({ repo: aliceDID, collection: POST, rkey: rkeyOf(posts[1].uri) })).data)
  await step('deleteRecord absent record', async () =>
    (await alice.com.atproto.repo.deleteRecord({ repo: aliceDID, collection: POST, rkey: '3jzfcijpj2z2a' })).data)
  await step('putRecord creates with a chosen rkey', async () => {
    const r = await alice.com.atproto.repo.putRecord({
      repo: aliceDID,
      collection: POST,
      rkey: '3jzfcijpj2z2b',
      record: { $type: POST, text: 'a post at a chosen key', createdAt: createdAt(3) },
    })
    wrote(aliceDID)
    return r.data
  })

  // Likes and follows.
  const like = await step('bob likes post 0', async () => {
    const r = await bob.like(posts[0].uri, edited.cid)
    wrote(bobDID)
    return r
  })
  await step('bob follows alice', async () => {
    const r = await bob.follow(aliceDID)
    wrote(bobDID)
    return r
  })
  await step('alice follows bob', async () => {
    const r = await alice.follow(bobDID)
    wrote(aliceDID)
    return r
  })
  if (like) {
    await step('getRecord like', async () =>
      (await bob.com.atproto.repo.getRecord({ repo: bobDID, collection: LIKE, rkey: rkeyOf(like.uri) })).data)
  }
  await step('listRecords follows of bob', async () =>
    (await bob.com.atproto.repo.listRecords({ repo: 'bob.test', collection: FOLLOW })).data)

  // Profile with an avatar.
  const png = makePNG()
  const uploaded = await mustStep('uploadBlob avatar', async () =>
    (await alice.uploadBlob(png, { encoding: 'image/png' })).data)
  await step('upsertProfile', async () => {
    await alice.upsertProfile((existing) => ({
      ...(existing || {}),
      displayName: 'Alice',
      description: 'Made by the interop scenario.',
      avatar: uploaded.blob,
    }))
    wrote(aliceDID)
    return null
  })
  await step('getRecord profile', async () =>
    (await alice.com.atproto.repo.getRecord({ repo: aliceDID, collection: PROFILE, rkey: 'self' })).data)
  await step('getBlob avatar', async () => {
    const r = await anon.com.atproto.sync.getBlob({ did: aliceDID, cid: uploaded.blob.ref.toString() })
    return {
      contentType: r.headers['content-type'],
      sameBytes: Buffer.compare(Buffer.from(r.data), png) === 0,
    }
  })
  await step('listBlobs', async () => (await anon.com.atproto.sync.listBlobs({ did: aliceDID })).data)

  // A batch of writes in one commit, then a mixed one.
  const batch = await mustStep(`applyWrites ${batchSize} creates`, async () => {
    const writes = []
    for (let i = 0; i < batchSize; i++) {
      writes.push({
        $type: 'com.atproto.repo.applyWrites#create',
        collection: POST,
        value: { $type: POST, text: `batch post ${i}`, createdAt: createdAt(10 + i) },
      })
    }
    const r = await alice.com.atproto.repo.applyWrites({ repo: aliceDID, writes })
    return r.data
  })
  wrote(aliceDID)
  await step('applyWrites update, delete and create', async () => {
    const r = await alice.com.atproto.repo.applyWrites({
      repo: aliceDID,
      writes: [
        {
          $type: 'com.atproto.repo.applyWrites#update',
          collection: POST,
          rkey: rkeyOf(batch.results[0].uri),
          value: { $type: POST, text: 'batch post 0, edited', createdAt: createdAt(10) },
        },
        { $type: 'com.atproto.repo.applyWrites#delete', collection: POST, rkey: rkeyOf(batch.results[1].uri) },
        {
          $type: 'com.atproto.repo.applyWrites#create',
          collection: LIKE,
          rkey: '3jzfcijpj2z2c',
          value: { $type: LIKE, subject: { uri: batch.results[2].uri, cid: batch.results[2].cid }, createdAt: createdAt(70) },
        },
      ],
    })
    wrote(aliceDID)
    return r.data
  })
  for (const i of [2, 25, 49]) {
    await step(`getRecord batch post ${i}`, async () =>
      (await alice.com.atproto.repo.getRecord({ repo: aliceDID, collection: POST, rkey: rkeyOf(batch.results[i].uri) })).data)
  }

  // Read everything back, page by page.
  const listed = {}
  for (const [collection, short] of [[POST, 'posts'], [LIKE, 'likes'], [FOLLOW, 'follows'], [PROFILE, 'profile']]) {
    let cursor
    for (let page = 0; page < 10; page++) {
      const res = await step(`listRecords ${short} page ${page}`, async () =>
        (await alice.com.atproto.repo.listRecords({ repo: aliceDID, collection, limit: pageSize, cursor })).data)
      if (!res) break
      for (const r of res.records) listed[r.uri] = r.cid
      cursor = res.cursor
      // A short page is the last; servers differ on whether it still
      // carries a cursor.
      if (!cursor || res.records.length < pageSize) break
    }
  }
  await step('listRecords posts reverse', async () =>
    (await alice.com.atproto.repo.listRecords({ repo: aliceDID, collection: POST, limit: 5, reverse: true })).data)
  await step('listRecords by handle', async () =>
    (await anon.com.atproto.repo.listRecords({ repo: 'alice.test', collection: LIKE })).data)
  await step('describeRepo', async () => (await anon.com.atproto.repo.describeRepo({ repo: 'alice.test' })).data)
  await step('resolveHandle', async () => (await anon.com.atproto.identity.resolveHandle({ handle: 'bob.test' })).data)

  // Whole repositories, verified by the reference repository library.
  for (const [name, a] of Object.entries(accounts)) {
    const latest = await step(`getLatestCommit ${name}`, async () =>
      (await anon.com.atproto.sync.getLatestCommit({ did: a.did })).data)
    if (latest) meta.revs[a.did] = latest.rev
    await step(`getRepoStatus ${name}`, async () => (await anon.com.atproto.sync.getRepoStatus({ did: a.did })).data)
    await step(`getRepo ${name} verifies`, async () => {
      const car = (await anon.com.atproto.sync.getRepo({ did: a.did })).data
      const verified = await verifyRepoCar(car, a.did, signingKeyOf(a))
      const collections = {}
      for (const c of verified.creates) collections[c.collection] = (collections[c.collection] || 0) + 1
      let listedMatch = null
      if (name === 'alice') {
        // Every record that listRecords returned is in the verified
        // repository with the same CID, and nothing else is.
        const inRepo = {}
        for (const c of verified.creates) inRepo[`at://${a.did}/${c.collection}/${c.rkey}`] = c.cid.toString()
        listedMatch = JSON.stringify(Object.entries(inRepo).sort()) === JSON.stringify(Object.entries(listed).sort())
      }
      return {
        rev: verified.commit.rev,
        headMatchesLatest: latest ? verified.commit.cid.toString() === latest.cid : null,
        revMatchesLatest: latest ? verified.commit.rev === latest.rev : null,
        records: verified.creates.length,
        collections,
        listedMatch,
      }
    })
  }
  await step('sync.getRecord proof verifies', async () => {
    const rkey = rkeyOf(posts[0].uri)
    const car = (await anon.com.atproto.sync.getRecord({ did: aliceDID, collection: POST, rkey })).data
    const claims = await verifyRecords(car, aliceDID, signingKeyOf(accounts.alice))
    return claims.map((c) => ({ collection: c.collection, rkey: c.rkey, record: c.record }))
  })
  await step('sync.getRecord proof of absence', async () => {
    const car = (await anon.com.atproto.sync.getRecord({ did: aliceDID, collection: POST, rkey: rkeyOf(posts[1].uri) })).data
    const claims = await verifyRecords(car, aliceDID, signingKeyOf(accounts.alice))
    return claims.length
  })

  // Calls that must fail.
  await step('login wrong password', async () =>
    (await new AtpAgent({ service }).login({ identifier: 'alice.test', password: 'not-her-password' })).data)
  await step('login unknown account', async () =>
    (await new AtpAgent({ service }).login({ identifier: 'nobody.test', password: 'whatever-password' })).data)
  await step('createRecord bad rkey', async () =>
    (await alice.com.atproto.repo.createRecord({
      repo: aliceDID,
      collection: POST,
      rkey: 'bad rkey!',
      record: { $type: POST, text: 'x', createdAt: createdAt(80) },
    })).data)
  await step('putRecord rkey "."', async () =>
    (await alice.com.atproto.repo.putRecord({
      repo: aliceDID,
      collection: POST,
      rkey: '.',
      record: { $type: POST, text: 'x', createdAt: createdAt(80) },
    })).data)
  await step('getRecord bad rkey', async () =>
    (await anon.com.atproto.repo.getRecord({ repo: aliceDID, collection: POST, rkey: 'bad rkey!' })).data)
  await step('createRecord invalid record', async () =>
    (await alice.com.atproto.repo.createRecord({
      repo: aliceDID,
      collection: POST,
      record: { $type: POST, text: 42, createdAt: createdAt(80) },
    })).data)
  await step('createRecord record missing createdAt', async () =>
    (await alice.com.atproto.repo.createRecord({ repo: aliceDID, collection: POST, record: { $type: POST, text: 'x' } })).data)
  await step('createRecord $type mismatch', async () =>
    (await alice.com.atproto.repo.createRecord({
      repo: aliceDID,
      collection: POST,
      record: { $type: LIKE, text: 'x', createdAt: createdAt(80) },
    })).data)
  await step('putRecord bad swapCommit', async () =>
    (await alice.com.atproto.repo.putRecord({
      repo: aliceDID,
      collection: POST,
      rkey: rkeyOf(posts[0].uri),
      swapCommit: posts[0].commit.cid,
      record: { $type: POST, text: 'x', createdAt: createdAt(80) },
    })).data)
  await step('putRecord bad swapRecord', async () =>
    (await alice.com.atproto.repo.putRecord({
      repo: aliceDID,
      collection: POST,
      rkey: rkeyOf(posts[0].uri),
      swapRecord: posts[0].cid,
      record: { $type: POST, text: 'x', createdAt: createdAt(80) },
    })).data)
  await step('createRecord bad swapCommit', async () =>
    (await alice.com.atproto.repo.createRecord({
      repo: aliceDID,
      collection: POST,
      swapCommit: posts[0].commit.cid,
      record: { $type: POST, text: 'x', createdAt: createdAt(80) },
    })).data)
  await step('deleteRecord bad swapRecord', async () =>
    (await alice.com.atproto.repo.deleteRecord({
      repo: aliceDID,
      collection: POST,
      rkey: rkeyOf(posts[2].uri),
      swapRecord: posts[0].cid,
    })).data)
  await step('applyWrites bad swapCommit', async () =>
    (await alice.com.atproto.repo.applyWrites({
      repo: aliceDID,
      swapCommit: posts[0].commit.cid,
      writes: [{ $type: 'com.atproto.repo.applyWrites#delete', collection: POST, rkey: rkeyOf(posts[2].uri) }],
    })).data)
  await step('getRecord unknown record', async () =>
    (await anon.com.atproto.repo.getRecord({ repo: aliceDID, collection: POST, rkey: '3jzfcijpj2z2d' })).data)
  await step('getRecord unknown repo', async () =>
    (await anon.com.atproto.repo.getRecord({ repo: 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', collection: POST, rkey: '3jzfcijpj2z2d' })).data)
  await step('getRepo unknown repo', async () =>
    (await anon.com.atproto.sync.getRepo({ did: 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa' })).data.length)
  await step('getBlob unknown blob', async () =>
    (await anon.com.atproto.sync.getBlob({ did: aliceDID, cid: 'bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq' })).data.length)
  await step('createRecord in another account', async () =>
    (await alice.com.atproto.repo.createRecord({
      repo: bobDID,
      collection: POST,
      record: { $type: POST, text: 'x', createdAt: createdAt(80) },
    })).data)
  await step('createRecord without a token', async () =>
    (await anon.com.atproto.repo.createRecord({
      repo: aliceDID,
      collection: POST,
      record: { $type: POST, text: 'x', createdAt: createdAt(80) },
    })).data)
  const withToken = (token) => ({ headers: { authorization: `Bearer ${token}` } })
  const now = Math.floor(Date.now() / 1000)
  const claims = { scope: 'com.atproto.access', aud: server.did, sub: aliceDID }
  await step('getSession forged token', async () =>
    (await anon.com.atproto.server.getSession(undefined, withToken(forgeJWT({ ...claims, iat: now, exp: now + 3600 })))).data)
  await step('getSession forged expired token', async () =>
    (await anon.com.atproto.server.getSession(undefined, withToken(forgeJWT({ ...claims, iat: now - 7200, exp: now - 3600 })))).data)
  await step('getSession garbage token', async () =>
    (await anon.com.atproto.server.getSession(undefined, withToken('not-a-token'))).data)
  await step('getSession with a refresh token', async () =>
    (await anon.com.atproto.server.getSession(undefined, withToken(alice.session.refreshJwt))).data)
  await step('refreshSession with an access token', async () =>
    (await anon.com.atproto.server.refreshSession(undefined, withToken(alice.session.accessJwt))).data)
  await step('refreshSession with a revoked token', async () =>
    (await anon.com.atproto.server.refreshSession(undefined, withToken(revoked))).data)

  // The failures changed nothing.
  await step('getLatestCommit alice after the failures', async () => {
    const r = (await anon.com.atproto.sync.getLatestCommit({ did: aliceDID })).data
    return r.rev === meta.revs[aliceDID]
  })

  const names = new Map([
    [aliceDID, 'alice'],
    [bobDID, 'bob'],
  ])
  const normalize = makeNormalizer(service.replace(/\/+$/, ''), names)
  return { steps: steps.map((s) => ({ ...s, value: normalize(s.value), error: s.error })), meta }
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify(out, null, 1) + '\n')
  },
  (err) => {
    process.stderr.write(`pds.js: ${err.stack || err}\n`)
    process.stdout.write(JSON.stringify({ steps, fatal: String(err.message || err) }, null, 1) + '\n')
    process.exit(1)
  },
)
