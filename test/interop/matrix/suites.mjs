// The suites of cases the runners (node.mjs, browser.mjs, page.html) know,
// by the name the Go tests pass in SUITE or SUITES. A suite of PER_COMBO
// runs once for each combo in COMBOS that it serves (combosFor); the others
// run once and choose their own transports.
import { CASES, MIXED } from "./cases.mjs";
import { FALLBACK, HUB_TRANSPORTS } from "./fallback.mjs";
import { STATEFUL, STATEFUL_WINDOW } from "./stateful.mjs";

export const SUITES = { matrix: CASES, mixed: MIXED, fallback: FALLBACK, hubtransports: HUB_TRANSPORTS, stateful: STATEFUL, statefulwindow: STATEFUL_WINDOW };

export const PER_COMBO = new Set(["matrix", "stateful", "statefulwindow"]);

// Stateful reconnect resumes a WebSocket; the stock client asks for it on
// no other transport.
const SERVES = {
  stateful: (c) => c.transport === "WebSockets",
  statefulwindow: (c) => c.transport === "WebSockets",
};

// combosFor is what suite runs on, given the combos in COMBOS: those of
// them it serves for a suite of PER_COMBO, else [null] (the suite chooses).
export function combosFor(suite, combos) {
  if (!PER_COMBO.has(suite)) return [null];
  return combos.filter(SERVES[suite] ?? (() => true));
}
