// The suites of cases the runners (node.mjs, browser.mjs, page.html) know,
// by the name the Go tests pass in SUITE or SUITES.
import { CASES, MIXED } from "./cases.mjs";

export const SUITES = { matrix: CASES, mixed: MIXED };
