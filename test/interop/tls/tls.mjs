// The stock @microsoft/signalr client over https and wss. e2e/tls_test.go
// (TestTLSInteropSignalRClient) starts a node serving TLS with a
// certificate of a CA made by the test, the example chat app on HTTPS (the
// gateway's upstream, verified against the same CA), and a control server
// whose /replace swaps the gateway's certificate files for a new
// certificate; it runs this file with NODE_EXTRA_CA_CERTS naming the CA,
// so Node trusts it the way a browser trusts a real CA. The file is not
// named *.test.mjs, so the run of test/interop/ does not pick it up.
import assert from "node:assert/strict";
import tls from "node:tls";
import { test } from "node:test";
import { APP_URL, CONTROL_URL, TEST_TIMEOUT_MS, env, signalR, withTimeout } from "../helpers.mjs";

const GATEWAY_URL = env("GATEWAY_URL");

// connect builds a connection for user through the app's redirect
// negotiate, on one transport only, so a start that falls back to another
// cannot pass.
function connect(user, transport) {
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${APP_URL}/api?user=${encodeURIComponent(user)}`, { transport })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  conn.on("system", () => {});
  return conn;
}

// nextMessage resolves with the user of the next newMessage carrying text.
function nextMessage(conn, text) {
  return withTimeout(new Promise((resolve) => {
    conn.on("newMessage", (user, got) => { if (got === text) resolve(user); });
  }), `newMessage ${text}`);
}

const normal = (hex) => hex.toLowerCase().replace(/^0+/, "");

// servedSerial is the serial number of the certificate a fresh TLS
// connection to the gateway gets, verified against the trusted CAs.
function servedSerial() {
  const { hostname, port } = new URL(GATEWAY_URL);
  return withTimeout(new Promise((resolve, reject) => {
    const sock = tls.connect({ host: hostname, port: Number(port), servername: "localhost" }, () => {
      const serial = sock.getPeerCertificate().serialNumber;
      sock.end();
      resolve(normal(serial));
    });
    sock.on("error", reject);
  }), "a TLS handshake with the gateway");
}

async function control(path, method = "GET") {
  const res = await withTimeout(fetch(`${CONTROL_URL}${path}`, { method }), `control ${path}`);
  const text = await res.text();
  assert.equal(res.status, 200, `control ${path}: ${text}`);
  return normal(text);
}

test("the stock client chats over wss, and a replaced certificate serves new sockets while old ones stay up", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const alice = connect("alice", signalR.HttpTransportType.WebSockets);
  t.after(() => alice.stop());
  await withTimeout(alice.start(), "alice's start over wss");
  assert.ok(alice.baseUrl.startsWith("https://"), `the app's negotiate redirected to ${alice.baseUrl}, want an https URL`);

  const hello = "hello over wss";
  const heard = nextMessage(alice, hello);
  assert.equal(await withTimeout(alice.invoke("sendMessage", hello), "sendMessage"), "sent");
  assert.equal(await heard, "alice");
  assert.equal(await servedSerial(), await control("/serial"), "the gateway serves the certificate the test made");

  const renewed = await control("/replace", "POST");
  assert.equal(await servedSerial(), renewed, "a new TLS connection gets the replaced certificate");

  // A client connecting now handshakes with the new certificate; alice's
  // socket, opened under the old one, is still up and hears bob.
  const bob = connect("bob", signalR.HttpTransportType.WebSockets);
  t.after(() => bob.stop());
  await withTimeout(bob.start(), "bob's start after the replacement");
  const again = "hello after renewal";
  const aliceHears = nextMessage(alice, again);
  const bobHears = nextMessage(bob, again);
  assert.equal(await withTimeout(bob.invoke("sendMessage", again), "bob's sendMessage"), "sent");
  assert.equal(await aliceHears, "bob");
  assert.equal(await bobHears, "bob");
  assert.equal(alice.state, signalR.HubConnectionState.Connected);
  assert.deepEqual(await withTimeout(alice.invoke("echo", "still here"), "alice's echo"), ["still here"]);
});

test("the stock client chats over Long Polling on https", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const carol = connect("carol", signalR.HttpTransportType.LongPolling);
  t.after(() => carol.stop());
  await withTimeout(carol.start(), "carol's start over Long Polling");
  assert.ok(carol.baseUrl.startsWith("https://"), `redirected to ${carol.baseUrl}, want https`);
  const text = "hello over long polling";
  const heard = nextMessage(carol, text);
  assert.equal(await withTimeout(carol.invoke("sendMessage", text), "sendMessage"), "sent");
  assert.equal(await heard, "carol");
});
