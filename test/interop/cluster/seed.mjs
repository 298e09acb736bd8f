// The seed scenario on three nodes, with the official client: clients on
// every node see one hub. Every send below is checked on every client, both
// ways: those meant to get it got it exactly once, the others never did.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Counter, direct, nodeOf, rest, start, withTimeout } from "./lib.mjs";

test("three nodes behave as one hub for the official client", { timeout: 60_000 }, async (t) => {
  // Two connections on every node; user alice has one on n1 and one on n2.
  const spec = [["a1", "alice", "n1"], ["erin", "erin", "n1"], ["bob", "bob", "n2"],
    ["a2", "alice", "n2"], ["carol", "carol", "n3"], ["dave", "dave", "n3"]];
  const c = {};
  for (const [name, user, node] of spec) {
    const conn = direct(node, user);
    c[name] = {
      conn,
      node,
      chat: new Counter(conn, "newMessage", (_user, text) => text),
      room: new Counter(conn, "roomMessage", (_room, _user, text) => text),
      rest: new Counter(conn, "direct", (text) => text),
    };
  }
  await Promise.all(Object.values(c).map((x) => start(t, x.conn)));
  for (const [name, x] of Object.entries(c)) assert.equal(nodeOf(x.conn), x.node, `${name} is on ${x.node}`);
  const id = (name) => c[name].conn.connectionId;
  const all = Object.keys(c);
  const seenBy = (names, counter, key) => Promise.all(names.map((n) => c[n][counter].seen(key, `${n} receives ${key}`)));

  // One invokes (on n2); the upstream replies with a broadcast; all receive.
  assert.equal(await withTimeout(c.bob.conn.invoke("sendMessage", "hello-all"), "sendMessage"), "sent");
  await seenBy(all, "chat", "hello-all");

  // A group with a member on every node, sent to by a non-member on n3.
  for (const n of ["carol", "a1", "bob"]) {
    assert.equal(await withTimeout(c[n].conn.invoke("joinRoom", "r1"), `${n} joins r1`), "r1");
  }
  assert.equal(await withTimeout(c.dave.conn.invoke("sendToRoom", "r1", "room-1"), "sendToRoom"), "sent");
  await seenBy(["carol", "a1", "bob"], "room", "room-1");

  // REST calls made on n3 reach clients on n1 and n2: a user with
  // connections on two nodes, and one connection on n1.
  const send = (target, text) => ({ target, arguments: [text] });
  await rest("n3", "POST", "/api/hubs/chat/users/alice/:send", send("direct", "to-alice"));
  await rest("n3", "POST", `/api/hubs/chat/connections/${encodeURIComponent(id("a1"))}/:send`, send("direct", "to-a1"));
  await seenBy(["a1", "a2"], "rest", "to-alice");
  await seenBy(["a1"], "rest", "to-a1");

  // Excluded connections on other nodes than the one called are excluded.
  const excl = (...names) => names.map((n) => `excluded=${encodeURIComponent(id(n))}`).join("&");
  await rest("n2", "POST", `/api/hubs/chat/:send?${excl("a1", "carol")}`, send("direct", "bcast-excl"));
  await rest("n2", "POST", `/api/hubs/chat/groups/r1/:send?${excl("a1")}`, send("direct", "group-excl"));
  await seenBy(["erin", "bob", "a2", "dave"], "rest", "bcast-excl");
  await seenBy(["carol", "bob"], "rest", "group-excl");

  // Barrier: published by n2 after everything above that might still be
  // in flight from n2, so a wrong delivery would arrive before it.
  await rest("n2", "POST", "/api/hubs/chat/:send", send("direct", "end"));
  await seenBy(all, "rest", "end");

  const want = {
    chat: { "hello-all": all },
    room: { "room-1": ["carol", "a1", "bob"] },
    rest: {
      "to-alice": ["a1", "a2"],
      "to-a1": ["a1"],
      "bcast-excl": ["erin", "bob", "a2", "dave"],
      "group-excl": ["carol", "bob"],
      end: all,
    },
  };
  for (const [counter, keys] of Object.entries(want)) {
    for (const [key, receivers] of Object.entries(keys)) {
      for (const n of all) {
        const expect = receivers.includes(n) ? 1 : 0;
        assert.equal(c[n][counter].count(key), expect, `${n} (${c[n].node}) got ${key} ${c[n][counter].count(key)} times, want ${expect}`);
      }
    }
  }
});
