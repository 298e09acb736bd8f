// W3C trace context from the official client. e2e/trace_interop_test.go
// (TestInteropTraceHeaders) starts a traced node with an anonymous hub
// "chat" and a recording upstream, runs this file with `node --test`, then
// checks what the upstream received. The file is not named *.test.mjs, so
// the run of test/interop/ does not pick it up.
//
// The stock client has no API for the headers of an invocation message
// (HubConnection builds invocations without them), but the JSON hub
// protocol writes whatever the message holds, and a hub protocol is the
// client's documented extension point (withHubProtocol). So an app adds
// traceparent to its invocations by wrapping JsonHubProtocol, as below;
// the connection's own HTTP headers (negotiate, and the WebSocket in Node)
// come from the stock `headers` option.
import assert from "node:assert/strict";
import { test } from "node:test";
import { env, signalR, withTimeout } from "../helpers.mjs";

const GATEWAY_URL = env("GATEWAY_URL");
const CONNECT_PARENT = env("CONNECT_PARENT");
const INVOKE_PARENT = env("INVOKE_PARENT");

// TracingJsonProtocol is the JSON hub protocol with the caller's current
// trace context in every invocation's headers.
class TracingJsonProtocol extends signalR.JsonHubProtocol {
  constructor(traceparent) {
    super();
    this.traceparent = traceparent;
  }

  writeMessage(message) {
    if (message.type === signalR.MessageType.Invocation) {
      message = { ...message, headers: { traceparent: this.traceparent() } };
    }
    return super.writeMessage(message);
  }
}

test("the stock client's trace context reaches the webhooks", { timeout: 30_000 }, async (t) => {
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${GATEWAY_URL}/client/?hub=chat`, {
      transport: signalR.HttpTransportType.WebSockets,
      headers: { traceparent: CONNECT_PARENT },
    })
    .withHubProtocol(new TracingJsonProtocol(() => INVOKE_PARENT))
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  t.after(() => conn.stop());
  await withTimeout(conn.start(), "connection start");
  assert.equal(await withTimeout(conn.invoke("echo", "hi"), "echo completion"), "traced");
  await withTimeout(conn.send("note", "fire and forget"), "send");
  // A second invoke after the send: the send's webhook has been made once
  // this completes (a connection's invocations run in order).
  assert.equal(await withTimeout(conn.invoke("echo", "again"), "second echo completion"), "traced");
});
