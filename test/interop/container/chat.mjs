// The official client chats through the gateway image (e2e/container_test.go
// starts it with podman): two users negotiate through the example chat app
// (redirect negotiate to the container), one sends, both receive the
// broadcast the app's webhook reply asked for. Not named *.test.mjs, so the
// single-node run of test/interop/ does not pick it up.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Inbox, build, start, unique, withTimeout } from "../helpers.mjs";

test("two stock clients chat through the gateway in a container", async (t) => {
  const alice = build(unique("alice"));
  const bob = build(unique("bob"));
  const inboxes = [new Inbox(alice, "newMessage"), new Inbox(bob, "newMessage")];
  await start(t, alice);
  await start(t, bob);
  assert.equal(await withTimeout(alice.invoke("sendMessage", "hello from a container"), "sendMessage"), "sent");
  for (const inbox of inboxes) {
    const [, text] = await inbox.next("newMessage", (_user, text) => text === "hello from a container");
    assert.equal(text, "hello from a container");
  }
});
