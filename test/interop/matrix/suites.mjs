// The suites of cases the runners (node.mjs, browser.mjs, page.html) know,
// by the name the Go tests pass in SUITE or SUITES. PER_COMBO suites run
// once for each combo in COMBOS; the others choose their own transports.
import { CASES, MIXED } from "./cases.mjs";
import { FALLBACK, HUB_TRANSPORTS } from "./fallback.mjs";
import { STATEFUL, STATEFUL_WINDOW } from "./stateful.mjs";

export const SUITES = { matrix: CASES, mixed: MIXED, fallback: FALLBACK, hubtransports: HUB_TRANSPORTS, stateful: STATEFUL, statefulwindow: STATEFUL_WINDOW };

export const PER_COMBO = new Set(["matrix", "stateful", "statefulwindow"]);
