// Runs suites of cases.mjs in headless Chromium, where the stock client
// uses the browser's own WebSocket, EventSource and fetch, driven with
// playwright-core. e2e/matrix_test.go (TestInteropBrowser) serves the page
// (page.html, which loads the client's browser bundles from node_modules)
// and runs this file with `node --test` and APP_URL, CHROMIUM (the
// browser's path), SUITES (for example "matrix,mixed") and COMBOS set, as
// for node.mjs; every case reports to its own node:test test. The file is
// not named *.test.mjs, so the run of test/interop/ does not pick it up.
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { TEST_TIMEOUT_MS } from "../common.mjs";
import { comboName, parseCombos } from "./cases.mjs";
import { SUITES, combosFor } from "./suites.mjs";

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

// One browser and one page serve the whole run, and the cases run one
// after another. Opening a page costs seconds on a loaded machine, more
// than most cases; each case opens and closes its own clients (Scope in
// cases.mjs), so a page carries nothing from one case to the next. Cases
// run in parallel in one page would share Chromium's six connections per
// host, which held event streams and polls exhaust (clients then time out
// starting), and cutting the stateful suite's proxy would hit them all.
let browser;
let page;

before(async () => {
  const t0 = Date.now();
  browser = await chromium.launch({ executablePath: env("CHROMIUM"), args: FLAGS, timeout: 60_000 });
  page = await openPage(browser);
  console.log(`browser: Chromium ${browser.version()}, page ready in ${Date.now() - t0} ms`);
});

after(() => browser?.close());

// openPage opens the test page in a context of its own (no cookies or
// cache from elsewhere) and waits until its module has loaded.
async function openPage(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (err) => console.log(`page error: ${err.message}`));
  page.on("console", (msg) => console.log(`console ${msg.type()}: ${msg.text()}`));
  page.on("requestfailed", (req) => console.log(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`));
  await page.goto(`${APP_URL}/browser/`, { timeout: 30_000 });
  await page.waitForFunction(() => window.matrix !== undefined, null, { timeout: 30_000 });
  return page;
}

for (const suite of suites) {
  for (const combo of combosFor(suite, combos)) {
    describe(combo ? `browser ${suite} ${comboName(combo)}` : `browser ${suite}`, () => {
      for (const c of SUITES[suite]) {
        test(c.name, { timeout: c.timeout ?? TEST_TIMEOUT_MS }, async () => {
          const r = await page.evaluate(([s, n, co, all]) => window.matrix.run(s, n, co, all), [suite, c.name, combo, combos]);
          if (!r.ok) throw new Error(r.error);
        });
      }
    });
  }
}
