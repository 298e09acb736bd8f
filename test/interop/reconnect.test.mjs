// Automatic reconnect across a gateway restart: the node closes every client
// with allowReconnect, a new node starts on the same address and store, and
// the stock client renegotiates through the app.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CONTROL_URL, Inbox, TEST_TIMEOUT_MS, build, getJSON, signalR, start, unique, withTimeout } from "./helpers.mjs";

test("the client reconnects with a new connection id after a gateway restart", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const alice = build(unique("alice"), (b) => b.withAutomaticReconnect([0, 500, 1000, 2000]));
  const aliceIn = new Inbox(alice, "newMessage");
  const events = [];
  const reconnecting = new Promise((resolve) => alice.onreconnecting((err) => { events.push("reconnecting"); resolve(err); }));
  const reconnected = new Promise((resolve) => alice.onreconnected((id) => { events.push("reconnected"); resolve(id); }));
  const closed = new Promise((resolve) => alice.onclose((err) => { events.push("closed"); resolve(err); }));
  await start(t, alice);
  const oldId = alice.connectionId;
  assert.ok(oldId);

  await withTimeout(getJSON(`${CONTROL_URL}/restart`, { method: "POST" }), "gateway restart");
  await withTimeout(reconnecting, "onreconnecting");
  const newId = await withTimeout(Promise.race([reconnected, closed.then((err) => { throw new Error(`closed instead of reconnecting: ${err}`); })]), "onreconnected");
  assert.deepEqual(events, ["reconnecting", "reconnected"]);
  assert.equal(alice.state, signalR.HubConnectionState.Connected);
  assert.notEqual(newId, oldId, "the reconnected connection has a new id");
  assert.equal(alice.connectionId, newId);

  // The new connection is a full member of the hub: a broadcast from a
  // client that joined after the restart reaches it.
  const bob = await start(t, build(unique("bob")));
  const text = unique("after-restart");
  await withTimeout(bob.invoke("sendMessage", text), "sendMessage after restart");
  const [, got] = await aliceIn.next("newMessage", (_, m) => m === text);
  assert.equal(got, text);
  const me = await withTimeout(alice.invoke("whoami"), "whoami after reconnect");
  assert.equal(me.connectionId, newId);
});
