// A function slower than every timeout between the official client and the
// gateway. e2e/interop_test.go (TestInteropSlowUpstream) starts a node with
// a client timeout of TIMEOUT_MS, a hub "slow" that allows anonymous
// clients and a function that holds each "slow" call until the control
// server's /release; it runs this file with `node --test`. The file is not
// named *.test.mjs, so the run of test/interop/ does not pick it up.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CONTROL_URL, env, getJSON, signalR, withTimeout } from "../helpers.mjs";

const GATEWAY_URL = env("GATEWAY_URL");
const HOLD_MS = Number(env("HOLD_MS"));
const TIMEOUT_MS = Number(env("TIMEOUT_MS"));

const arrived = () => withTimeout(getJSON(`${CONTROL_URL}/arrived`), "the function's calls");

// waitArrived resolves once the function got the calls in want (bounded).
async function waitArrived(want) {
  return withTimeout((async () => {
    for (;;) {
      const got = await arrived();
      if (got.length >= want.length) return got;
      await new Promise((r) => setTimeout(r, 20));
    }
  })(), `the function to get ${want}`);
}

test("a pinging client outlives a function slower than every timeout", { timeout: 60_000 }, async (t) => {
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${GATEWAY_URL}/client/?hub=slow`)
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  // The client gives up on a server silent for TIMEOUT_MS and pings every
  // 500 ms; the gateway (same client timeout) pings it every 500 ms.
  conn.serverTimeoutInMilliseconds = TIMEOUT_MS;
  conn.keepAliveIntervalInMilliseconds = 500;
  let closedWith = null;
  conn.onclose((err) => { closedWith = err ?? new Error("closed without an error"); });
  t.after(() => conn.stop());
  await withTimeout(conn.start(), "connection start");

  const first = conn.invoke("slow", "first");
  const second = conn.invoke("slow", "second");
  // Keep the promises from counting as unhandled while we wait.
  first.catch(() => {});
  second.catch(() => {});
  assert.deepEqual(await waitArrived(["first"]), ["first"]);

  // The function holds the call for twice the client timeout.
  await new Promise((r) => setTimeout(r, HOLD_MS));
  assert.equal(closedWith, null, `the connection closed while the function worked: ${closedWith}`);
  assert.equal(conn.state, signalR.HubConnectionState.Connected);
  assert.deepEqual(await arrived(), ["first"], "the second invocation waits for the first (one in flight per connection)");

  await withTimeout(getJSON(`${CONTROL_URL}/release`, { method: "POST" }), "release");
  assert.equal(await withTimeout(first, "the first completion"), "done first");
  assert.equal(await withTimeout(second, "the second completion"), "done second");
  assert.deepEqual(await arrived(), ["first", "second"]);
  assert.equal(conn.state, signalR.HubConnectionState.Connected);
});
