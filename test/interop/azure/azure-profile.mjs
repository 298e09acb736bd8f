// Stock @microsoft/signalr clients, over JSON and MessagePack, against a hub
// whose upstream is of the azure-signalr profile. e2e/azure_profile_test.go
// (TestInteropAzureProfile) starts the gateway, hub "azchat" (anonymous
// clients allowed) and a function written from Azure's upstream format,
// then runs this file with `node --test`; it checks afterwards what the
// function received. Each connection names itself with case=… in its
// query, which reaches the function in X-ASRS-Client-Query. The file is
// not named *.test.mjs, so the run of test/interop/ does not pick it up.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this through \`go test -run TestInteropAzureProfile ./e2e/\``);
  return v;
}

const GATEWAY_URL = env("GATEWAY_URL").replace(/\/+$/, "");
const ANN_TOKEN = env("ANN_TOKEN");
const WAIT_MS = 10_000;

// withTimeout rejects when p has not settled within WAIT_MS.
function withTimeout(p, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function build(protocol, query, token) {
  const opts = token ? { accessTokenFactory: () => token } : {};
  const b = new signalR.HubConnectionBuilder()
    .withUrl(`${GATEWAY_URL}/client/?hub=azchat&${query}`, opts)
    .configureLogging(signalR.LogLevel.Warning);
  if (protocol === "messagepack") b.withHubProtocol(new MessagePackHubProtocol());
  return b.build();
}

for (const protocol of ["json", "messagepack"]) {
  test(`${protocol}: a signed-in client is accepted, invokes, sends and leaves`, { timeout: 30_000 }, async () => {
    const conn = build(protocol, `case=${protocol}-user`, ANN_TOKEN);
    await withTimeout(conn.start(), "start");
    assert.deepEqual(await withTimeout(conn.invoke("echo", "hi", 42), "echo"), ["hi", 42]);
    await assert.rejects(withTimeout(conn.invoke("fail"), "fail"), /fail on purpose/);
    await withTimeout(conn.send("shout", "loud"), "send");
    // The send has no completion; an invoke after it proves the connection
    // is still fine before it closes.
    assert.deepEqual(await withTimeout(conn.invoke("echo", "hi", 42), "second echo"), ["hi", 42]);
    await withTimeout(conn.stop(), "stop");
  });

  test(`${protocol}: a client the function rejects does not connect`, { timeout: 30_000 }, async () => {
    const conn = build(protocol, `case=${protocol}-reject&reject=yes`);
    await assert.rejects(withTimeout(conn.start(), "start"), /not on the list/);
  });

  test(`${protocol}: an anonymous client is accepted as it is`, { timeout: 30_000 }, async () => {
    const conn = build(protocol, `case=${protocol}-anon`);
    await withTimeout(conn.start(), "start");
    assert.deepEqual(await withTimeout(conn.invoke("echo", "anon"), "echo"), ["anon"]);
    await withTimeout(conn.stop(), "stop");
  });
}
