// Runs suites of cases.mjs in headless Chromium, where the stock client
// uses the browser's own WebSocket, EventSource and fetch, driven with
// playwright-core. e2e/matrix_test.go (TestInteropBrowser) serves the page
// (page.html, which loads the client's browser bundles from node_modules)
// and runs this file with `node --test` and APP_URL, CHROMIUM (the
// browser's path), SUITES (for example "matrix,mixed") and, for the matrix
// and the mixed suite, COMBOS set, as for node.mjs. Each combo of a suite
// runs in a page of its own; every case reports to its own node:test test.
// The file is not named *.test.mjs, so the run of test/interop/ does not
// pick it up.
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { TEST_TIMEOUT_MS } from "../common.mjs";
import { comboName, parseCombos } from "./cases.mjs";
import { PER_COMBO, SUITES } from "./suites.mjs";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this file through \`go test -run InteropBrowser ./e2e/\``);
  return v;
}

const APP_URL = env("APP_URL").replace(/\/+$/, "");
const combos = parseCombos(process.env.COMBOS ?? "");
const suites = env("SUITES").split(",");
for (const s of suites) if (!SUITES[s]) throw new Error(`SUITES has ${s}: want some of ${Object.keys(SUITES).join(", ")}`);

// Chromium's own network features would reach for hosts this machine
// cannot resolve; none of them matter to a test on loopback.
const FLAGS = [
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let browser;

before(async () => {
  browser = await chromium.launch({ executablePath: env("CHROMIUM"), args: FLAGS, timeout: 60_000 });
  console.log(`browser: Chromium ${browser.version()}`);
});

after(() => browser?.close());

// openPage opens the test page in a context of its own (no cookies or
// cache shared with other pages) and waits until its module has loaded.
async function openPage(label) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (err) => console.log(`${label} page error: ${err.message}`));
  page.on("console", (msg) => console.log(`${label} console ${msg.type()}: ${msg.text()}`));
  page.on("requestfailed", (req) => console.log(`${label} request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`));
  await page.goto(`${APP_URL}/browser/`, { timeout: 20_000 });
  await page.waitForFunction(() => window.matrix !== undefined, null, { timeout: 20_000 });
  return { context, page };
}

// The matrix's combos run side by side, each in its page; the other
// suites one combo at a time (the stateful suite's cuts would hit every
// combo's sockets).
for (const suite of suites) {
  describe(`browser ${suite}`, { concurrency: suite === "matrix" }, () => {
    for (const combo of PER_COMBO.has(suite) ? combos : [null]) {
      const label = combo ? comboName(combo) : suite;
      describe(label, () => {
        let p;
        before(async () => {
          p = await openPage(`[${label}]`);
        });
        after(() => p?.context.close());
        for (const c of SUITES[suite]) {
          test(c.name, { timeout: c.timeout ?? TEST_TIMEOUT_MS }, async () => {
            const r = await p.page.evaluate(([s, n, co, all]) => window.matrix.run(s, n, co, all), [suite, c.name, combo, combos]);
            if (!r.ok) throw new Error(r.error);
          });
        }
      });
    }
  });
}
