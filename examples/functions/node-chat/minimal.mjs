// The smallest upstream in Node, shown in docs/webhooks.md: node:http and the
// npm standardwebhooks package (npm ci in this folder installs it).
//
//   CHAT_WEBHOOK_SECRET='whsec_…' PORT=8081 node examples/functions/node-chat/minimal.mjs
//
// It answers the registration check, verifies each webhook, keeps anonymous
// clients out and checks a message's arguments before it uses them: they
// come from the client.
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const wh = new Webhook(process.env.CHAT_WEBHOOK_SECRET); // the "whsec_…" string as shown

createServer((req, res) => {
  const reply = (status, body) =>
    body === undefined ? res.writeHead(status).end() : res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
  if (req.method === "OPTIONS") { // the registration check
    return res.writeHead(200, { "WebHook-Allowed-Origin": req.headers["webhook-request-origin"] || "*" }).end();
  }
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > 1 << 20) req.destroy(); // no webhook body is that large
    else chunks.push(c);
  });
  req.on("end", () => {
    let ev;
    try {
      ev = wh.verify(Buffer.concat(chunks).toString("utf8"), req.headers); // signature and timestamp
    } catch (err) {
      return reply(401, { error: err.message });
    }
    if (ev.event === "connect" && ev.userId === null) return reply(403, { error: "sign in first" });
    if (ev.event === "message") {
      const args = Array.isArray(ev.arguments) ? ev.arguments : [];
      if (ev.target.toLowerCase() !== "sendmessage" || args.length !== 1 || typeof args[0] !== "string" || args[0] === "") {
        return reply(200, { error: "call sendMessage with one non-empty string" });
      }
      return reply(200, { result: "sent", actions: [{ action: "broadcast", target: "newMessage", arguments: [ev.userId, args[0]] }] });
    }
    reply(204);
  });
}).listen(Number(process.env.PORT || 8081), "127.0.0.1");
