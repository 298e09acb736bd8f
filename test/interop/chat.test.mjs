// The chat example app through the stock @microsoft/signalr client: redirect
// negotiate, broadcasts, invoke results and errors, rejected connects and
// groups.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Inbox, TEST_TIMEOUT_MS, build, signalR, start, unique, withTimeout } from "./helpers.mjs";

const opts = { timeout: TEST_TIMEOUT_MS };

test("a message from one client is broadcast to both", opts, async (t) => {
  const alice = build(unique("alice"));
  const bob = build(unique("bob"));
  const aliceIn = new Inbox(alice, "newMessage");
  const bobIn = new Inbox(bob, "newMessage");
  await start(t, alice);
  await start(t, bob);
  assert.equal(alice.state, signalR.HubConnectionState.Connected);

  const text = unique("hello");
  const result = await withTimeout(alice.invoke("sendMessage", text), "sendMessage");
  assert.equal(result, "sent");

  for (const [who, inbox] of [["alice", aliceIn], ["bob", bobIn]]) {
    const [user, got] = await inbox.next("newMessage", (_, m) => m === text);
    assert.match(user, /^alice-/, `${who} got the message from ${user}`);
    assert.equal(got, text);
  }
});

test("invoke returns the handler's result or its error", opts, async (t) => {
  const name = unique("carol");
  const conn = await start(t, build(name));

  const me = await withTimeout(conn.invoke("whoami"), "whoami");
  assert.deepEqual(me, { connectionId: conn.connectionId, userId: name });
  assert.ok(conn.connectionId, "the client knows its connection id");

  const args = ["text", 42, { nested: [true, null] }];
  const echoed = await withTimeout(conn.invoke("echo", ...args), "echo");
  assert.deepEqual(echoed, args);

  await assert.rejects(withTimeout(conn.invoke("sendMessage"), "sendMessage without text"), (err) => {
    assert.match(err.message, /sendMessage: argument 1 must be a non-empty string/);
    return true;
  });
  await assert.rejects(withTimeout(conn.invoke("explode"), "unknown method"), /unknown method "explode"/);

  // The connection survives a failed invocation.
  assert.deepEqual(await withTimeout(conn.invoke("echo", "still here"), "echo after errors"), ["still here"]);
});

test("a connect the handler rejects fails start with its reason", opts, async () => {
  const conn = build("blocked");
  await assert.rejects(withTimeout(conn.start(), "start of a blocked user"), (err) => {
    assert.match(err.message, /user "blocked" may not chat/);
    return true;
  });
  assert.equal(conn.state, signalR.HubConnectionState.Disconnected);
});

test("a group send reaches members only", opts, async (t) => {
  const room = unique("room");
  const member = build(unique("member"));
  const outsider = build(unique("outsider"));
  const memberIn = new Inbox(member, "roomMessage", "newMessage");
  const outsiderIn = new Inbox(outsider, "roomMessage", "newMessage");
  await start(t, member);
  await start(t, outsider);

  assert.equal(await withTimeout(member.invoke("joinRoom", room), "joinRoom"), room);
  assert.equal(await withTimeout(member.invoke("sendToRoom", room, "members only"), "sendToRoom"), "sent");
  const [gotRoom, , text] = await memberIn.next("roomMessage");
  assert.deepEqual([gotRoom, text], [room, "members only"]);

  // A broadcast sent after the group message is the barrier: once the
  // outsider has it, a group message meant for it would have arrived too.
  const barrier = unique("barrier");
  await withTimeout(member.invoke("sendMessage", barrier), "barrier broadcast");
  await outsiderIn.next("newMessage", (_, m) => m === barrier);
  assert.deepEqual(outsiderIn.all("roomMessage"), [], "the outsider got a group message");

  // After leaving, the member no longer gets the room's messages.
  assert.equal(await withTimeout(member.invoke("leaveRoom", room), "leaveRoom"), room);
  await withTimeout(outsider.invoke("sendToRoom", room, "after leave"), "sendToRoom after leave");
  const barrier2 = unique("barrier");
  await withTimeout(outsider.invoke("sendMessage", barrier2), "second barrier");
  await memberIn.next("newMessage", (_, m) => m === barrier2);
  assert.deepEqual(memberIn.all("roomMessage"), [], "a member that left still got a group message");
});
