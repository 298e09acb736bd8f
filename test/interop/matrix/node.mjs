// Runs a suite of cases.mjs in Node with the stock client and its
// MessagePack protocol. e2e/matrix_test.go runs it with `node --test`,
// APP_URL (the test app), SUITE (a name in suites.mjs) and COMBOS set: the
// transports/protocols to run a suite of PER_COMBO on (those it serves), or
// for the mixed suite those to mix; the others choose their own. The file
// is not named *.test.mjs, so the run of test/interop/ does not pick it up.
import { test } from "node:test";
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { TEST_TIMEOUT_MS } from "../common.mjs";
import { Matrix, comboName, parseCombos } from "./cases.mjs";
import { PER_COMBO, SUITES, combosFor } from "./suites.mjs";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this file through \`go test -run InteropMatrix ./e2e/\``);
  return v;
}

const suite = env("SUITE");
const cases = SUITES[suite];
if (!cases) throw new Error(`SUITE=${suite}: want one of ${Object.keys(SUITES).join(", ")}`);
const combos = parseCombos(process.env.COMBOS ?? "");
const runs = combosFor(suite, combos);
if (PER_COMBO.has(suite) && runs.length === 0) throw new Error(`SUITE=${suite} runs on the combos in COMBOS it serves; COMBOS=${process.env.COMBOS ?? ""} has none`);
const m = new Matrix({ signalR, MessagePackHubProtocol }, env("APP_URL"));

for (const combo of runs) {
  for (const c of cases) {
    const name = combo ? `${comboName(combo)}: ${c.name}` : c.name;
    test(name, { timeout: c.timeout ?? TEST_TIMEOUT_MS }, () => m.run(c, combo, combos));
  }
}
