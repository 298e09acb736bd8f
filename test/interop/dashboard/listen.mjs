// A stock @microsoft/signalr client for e2e/dashboard_browser_test.go: it
// connects to SB_URL with SB_TOKEN, prints "connected" once started and then
// one JSON line per "newMessage" it receives, until its stdin closes (the
// test ends) or SB_MAX_MS passes (a bound against a hung test).
import * as signalR from "@microsoft/signalr";

const url = process.env.SB_URL;
const token = process.env.SB_TOKEN;
const maxMs = Number(process.env.SB_MAX_MS || 120000);

const conn = new signalR.HubConnectionBuilder()
  .withUrl(url, { accessTokenFactory: () => token, transport: signalR.HttpTransportType.WebSockets, skipNegotiation: false })
  .configureLogging(signalR.LogLevel.Warning)
  .build();
conn.on("newMessage", (...args) => console.log(JSON.stringify({ target: "newMessage", args })));

const stop = async (code) => {
  await conn.stop().catch(() => {});
  process.exit(code);
};
setTimeout(() => stop(0), maxMs).unref();
process.stdin.on("end", () => stop(0));
process.stdin.resume();

try {
  await conn.start();
  console.log(JSON.stringify({ connected: conn.connectionId }));
} catch (err) {
  console.error("start failed: " + err.message);
  process.exit(1);
}
