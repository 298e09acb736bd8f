// Runs a suite of cases.mjs in Node with the stock client and its
// MessagePack protocol. e2e/matrix_test.go runs it with `node --test`,
// APP_URL (the test app), SUITE (matrix, mixed, fallback or hubtransports)
// and COMBOS set: for the matrix the one transport/protocol to run it on,
// for the mixed suite those to mix; the others choose their own. The file is not named
// *.test.mjs, so the run of test/interop/ does not pick it up.
import { test } from "node:test";
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { TEST_TIMEOUT_MS } from "../common.mjs";
import { Matrix, comboName, parseCombos } from "./cases.mjs";
import { SUITES } from "./suites.mjs";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this file through \`go test -run InteropMatrix ./e2e/\``);
  return v;
}

const suite = env("SUITE");
const cases = SUITES[suite];
if (!cases) throw new Error(`SUITE=${suite}: want one of ${Object.keys(SUITES).join(", ")}`);
const combos = parseCombos(process.env.COMBOS ?? "");
const combo = suite === "matrix" ? combos[0] : null;
if (suite === "matrix" && combos.length !== 1) throw new Error(`COMBOS=${process.env.COMBOS}: the matrix runs on one transport/protocol at a time`);
const m = new Matrix({ signalR, MessagePackHubProtocol }, env("APP_URL"));

for (const c of cases) {
  test(combo ? `${comboName(combo)}: ${c.name}` : c.name, { timeout: TEST_TIMEOUT_MS }, () => m.run(c, combo, combos));
}
