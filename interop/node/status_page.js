// Opens a Welkin relay's public status page in a real browser, as a PDS
// operator would, for the interop tests: Chromium (the system's build,
// driven by playwright-core 1.65.2, headless) loads the relay's landing
// page, types the hostname into its form, submits it and reads the host's
// page.
//
//   node status_page.js    read {"relay", "hostname", "chromium",
//                          "timeoutMs"} on stdin
//
// It prints one JSON object on stdout: the landing page's title, the URL
// the form led to and its HTTP status (httpStatus), the texts of the host page's facts
// (by their element ids) and the rows of its recent rejections table.
// Any failure exits 1 with a message on stderr.
'use strict'

const { chromium } = require('playwright-core')

async function readStdin() {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

async function main() {
  const input = await readStdin()
  const browser = await chromium.launch({
    executablePath: input.chromium,
    headless: true,
    // The tests may run as root, where Chromium's sandbox cannot start.
    args: ['--no-sandbox'],
  })
  try {
    const page = await browser.newPage()
    page.setDefaultTimeout(input.timeoutMs || 30000)
    const landing = await page.goto(input.relay + '/')
    const out = { landingStatus: landing.status(), landingTitle: await page.title() }

    await page.fill('#host', input.hostname)
    const [resp] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/status'),
      page.click('#check'),
    ])
    await page.waitForLoadState()
    out.url = page.url()
    out.httpStatus = resp.status()
    out.heading = (await page.textContent('h1')).trim()
    for (const id of ['status', 'connection', 'last-seq', 'accounts', 'account-limit', 'account-limit-reason',
      'event-limit', 'event-limit-reason', 'throttled']) {
      const el = await page.$('#' + id)
      out[id] = el ? (await el.textContent()).replace(/\s+/g, ' ').trim() : null
    }
    out.rejections = await page.$$eval('#rejections tr', (rows) =>
      rows.slice(1).map((r) => Array.from(r.cells).map((c) => c.textContent.trim())))
    process.stdout.write(JSON.stringify(out) + '\n')
  } finally {
    await browser.close()
  }
}

main().catch((err) => {
  process.stderr.write((err && err.stack) || String(err))
  process.stderr.write('\n')
  process.exit(1)
})
