// Drives the reference XRPC clients (@atproto/xrpc and @atproto/api)
// against a Welkin XRPC server for the interop tests. It prints one JSON
// value on stdout; failures print a message on stderr and exit 1.
//
//   node xrpc.js URL    read the calls to make on stdin, make them
//
// stdin is {"lexicons": [...], "calls": [...]}: lexicons are extra schema
// documents for test methods (the published ones come with @atproto/api);
// each call is {"name", "nsid", "params", "input"}, or {"name", "agent":
// "describeServer"|"getRecord", "params"} to go through the typed methods
// of AtpAgent. The output maps each name to {"ok": true, "data"} or to
// {"ok": false, "class", "error", "status", "message", "headers"}: what
// the client exposes of the error it throws.
'use strict'

const { XrpcClient, XRPCError } = require('@atproto/xrpc')
const { AtpAgent, schemas } = require('@atproto/api')

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

// The response headers a test looks at; fetch lower-cases their names.
const keptHeaders = ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'ratelimit-policy']

const describeError = (err) => {
  if (!(err instanceof XRPCError)) {
    return { ok: false, class: err.constructor.name, message: String(err.stack || err) }
  }
  const headers = {}
  for (const h of keptHeaders) {
    if (err.headers && err.headers[h] !== undefined) headers[h] = err.headers[h]
  }
  return {
    ok: false,
    class: err.constructor.name,
    error: err.error,
    status: err.status,
    message: err.message,
    headers,
  }
}

const main = async () => {
  const [service] = process.argv.slice(2)
  if (!service) throw new Error('usage: node xrpc.js URL')
  const { lexicons = [], calls = [] } = await readStdin()
  const client = new XrpcClient(service, [...schemas, ...lexicons])
  const agent = new AtpAgent({ service })
  const out = {}
  for (const c of calls) {
    try {
      let res
      switch (c.agent) {
        case undefined:
          res = await client.call(c.nsid, c.params, c.input)
          break
        case 'describeServer':
          res = await agent.com.atproto.server.describeServer(c.params)
          break
        case 'getRecord':
          res = await agent.com.atproto.repo.getRecord(c.params)
          break
        default:
          throw new Error(`unknown agent method ${c.agent}`)
      }
      out[c.name] = { ok: true, data: res.data }
    } catch (err) {
      out[c.name] = describeError(err)
    }
  }
  return out
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify(out) + '\n')
  },
  (err) => {
    process.stderr.write(`xrpc.js: ${err.stack || err}\n`)
    process.exit(1)
  },
)
