// Shared helpers of the interop tests. The Go driver (e2e/interop_test.go)
// starts the gateway, the example chat app and a control server, then runs
// `node --test` here with APP_URL, GATEWAY_URL and CONTROL_URL set.
import * as signalR from "@microsoft/signalr";
import { withTimeout } from "./common.mjs";

export { signalR };
export * from "./common.mjs";

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run these tests through \`go test -run Interop ./e2e/\``);
  return v.replace(/\/+$/, "");
}

export const APP_URL = env("APP_URL");
export const CONTROL_URL = env("CONTROL_URL");

// build returns a connection for user through the app's redirect negotiate
// (APP_URL/api/negotiate?user=… answers {url, accessToken}).
export function build(user, configure = (b) => b) {
  const b = new signalR.HubConnectionBuilder()
    .withUrl(`${APP_URL}/api?user=${encodeURIComponent(user)}`)
    .configureLogging(signalR.LogLevel.Warning);
  const conn = configure(b).build();
  // The app announces joins and leaves on "system"; a test that cares adds
  // its own handler. This one only keeps the client from warning about them.
  conn.on("system", () => {});
  return conn;
}

// start starts conn (bounded) and registers its stop with the test.
export async function start(t, conn) {
  t.after(() => conn.stop());
  await withTimeout(conn.start(), "connection start");
  return conn;
}

export async function getJSON(url, init) {
  const res = await fetch(url, init);
  const text = await res.text();
  if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

