// The chat example function in Node: the same contract as the Go example in
// examples/functions/chat, written against the wire contract alone (node:http,
// node:crypto and the npm standardwebhooks package), to prove a function app
// needs no Switchboard SDK.
//
//   POST /api/negotiate?user=NAME  redirect negotiate: {url, accessToken}
//   POST /api/webhook              the hub's upstream (signed webhooks)
//   OPTIONS /api/webhook           the registration check (abuse protection)
//
// Config from the environment: SWITCHBOARD_CONNECTION_STRING, WEBHOOK_SECRET
// ("whsec_…", as shown when the upstream was registered; two may be given,
// separated by a space, during a rotation) and PORT (default 3000).
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const HUB = "chat";
const TOKEN_LIFETIME_SECONDS = 3600;
const MAX_BODY = 1 << 20;

// parseConnectionString follows the gateway's rules (negotiate/connstr.go):
// case-insensitive keys in any order, split at the first "=" (base64 secrets
// end in "="), unknown keys ignored, Port= overrides the endpoint's port.
function parseConnectionString(s) {
  const fields = new Map();
  for (const part of s.split(";")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) throw new Error("connection string: an entry is not key=value");
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const endpoint = fields.get("endpoint");
  const accessKey = fields.get("accesskey");
  if (!endpoint) throw new Error("connection string: missing Endpoint");
  if (!accessKey) throw new Error("connection string: missing AccessKey");
  const u = new URL(endpoint);
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new Error(`connection string: Endpoint ${endpoint} is not an http(s) URL`);
  }
  if (fields.has("port")) u.port = fields.get("port");
  const base = (u.origin + u.pathname).replace(/\/+$/, "");
  return { endpoint: base, accessKey, keyId: fields.get("keyid") || "" };
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");

// issueToken signs the client token by hand: HS256 with the access key's
// UTF-8 bytes, kid naming the key when the connection string has KeyId=.
function issueToken(cs, audience, user, now = Date.now()) {
  const header = { alg: "HS256", typ: "JWT" };
  if (cs.keyId) header.kid = cs.keyId;
  const iat = Math.floor(now / 1000);
  const claims = { aud: audience, iat, exp: iat + TOKEN_LIFETIME_SECONDS, nameid: user };
  const signing = b64url(JSON.stringify(header)) + "." + b64url(JSON.stringify(claims));
  return signing + "." + b64url(createHmac("sha256", cs.accessKey).update(signing).digest());
}

// clientURL is where the SignalR client connects, and the token's audience.
const clientURL = (cs) => `${cs.endpoint}/client/?hub=${encodeURIComponent(HUB)}`;

// Action builders: the vocabulary of docs/webhooks.md.
const broadcast = (target, args, excluded) => ({ action: "broadcast", target, arguments: args, ...(excluded ? { excluded } : {}) });
const sendToGroup = (group, target, args) => ({ action: "sendToGroup", group, target, arguments: args });

// handleEvent is the whole server side of the chat: it maps a verified event
// to [status, reply body or null].
function handleEvent(ev) {
  const user = ev.userId ?? "";
  switch (ev.event) {
    case "connect":
      if (user === "blocked") return [403, { error: 'user "blocked" may not chat' }];
      return [200, { groups: ["lobby"] }];
    case "connected":
      return [200, { actions: [broadcast("system", [`${user} joined`], [ev.connectionId])] }];
    case "disconnected":
      return [200, { actions: [broadcast("system", [`${user} left`])] }];
    case "message":
      break;
    default:
      return [204, null];
  }

  const args = Array.isArray(ev.arguments) ? ev.arguments : [];
  const str = (i) => {
    const v = args[i];
    if (typeof v !== "string" || v === "") throw new Error(`${ev.target}: argument ${i + 1} must be a non-empty string`);
    return v;
  };
  // An error reply rejects the caller's invoke with this text.
  try {
    switch (String(ev.target).toLowerCase()) {
      case "sendmessage":
        return [200, { result: "sent", actions: [broadcast("newMessage", [user, str(0)])] }];
      case "joinroom": {
        const room = str(0);
        return [200, { result: room, actions: [{ action: "addToGroup", group: room }, sendToGroup(room, "system", [`${user} entered ${room}`])] }];
      }
      case "leaveroom": {
        const room = str(0);
        return [200, { result: room, actions: [{ action: "removeFromGroup", group: room }] }];
      }
      case "sendtoroom": {
        const room = str(0);
        const text = str(1);
        return [200, { result: "sent", actions: [sendToGroup(room, "roomMessage", [room, user, text])] }];
      }
      case "whoami":
        return [200, { result: { connectionId: ev.connectionId, userId: user } }];
      case "echo":
        return [200, { result: args }];
    }
  } catch (err) {
    return [200, { error: err.message }];
  }
  return [200, { error: `unknown method ${JSON.stringify(ev.target)}; try sendMessage, joinRoom, leaveRoom, sendToRoom, whoami or echo` }];
}

function send(res, status, body) {
  if (body === null) {
    res.writeHead(status).end();
    return;
  }
  const data = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) }).end(data);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error("body over 1 MiB"), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

// verifyAny accepts the request when any configured secret verifies it, so
// the app and the gateway can rotate secrets without downtime.
function verifyAny(hooks, body, headers) {
  let last;
  for (const wh of hooks) {
    try {
      return wh.verify(body, headers); // checks signature and the 5-minute timestamp window
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

function createApp({ connectionString, webhookSecrets }) {
  const cs = parseConnectionString(connectionString);
  // Without a secret (the upstream is not registered yet) the app still
  // answers the registration check; webhooks get 503 until it has one.
  const hooks = webhookSecrets.map((s) => new Webhook(s));

  return createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    try {
      if (url.pathname === "/api/negotiate" && req.method === "POST") {
        const user = (url.searchParams.get("user") || "").trim();
        if (!user) return send(res, 400, { error: "pass ?user=NAME" });
        const aud = clientURL(cs);
        return send(res, 200, { url: aud, accessToken: issueToken(cs, aud, user) });
      }
      if (url.pathname === "/api/webhook" && req.method === "OPTIONS") {
        const origin = req.headers["webhook-request-origin"];
        if (!origin) return send(res, 400, { error: "missing WebHook-Request-Origin" });
        res.writeHead(200, { "WebHook-Allowed-Origin": origin }).end();
        return;
      }
      if (url.pathname === "/api/webhook" && req.method === "POST") {
        if (hooks.length === 0) {
          return send(res, 503, { error: "this function has no signing secret yet: restart it with WEBHOOK_SECRET set to the upstream's secret" });
        }
        const body = (await readBody(req)).toString("utf8");
        let ev;
        try {
          ev = verifyAny(hooks, body, req.headers);
        } catch (err) {
          return send(res, 401, { error: `webhook verification failed: ${err.message}` });
        }
        const [status, reply] = handleEvent(ev);
        return send(res, status, reply);
      }
      send(res, 404, { error: "not found" });
    } catch (err) {
      send(res, err.status || 500, { error: err.status ? err.message : "internal error" });
    }
  });
}

function main() {
  const connectionString = process.env.SWITCHBOARD_CONNECTION_STRING;
  const secrets = (process.env.WEBHOOK_SECRET || "").split(/\s+/).filter(Boolean);
  if (!connectionString) {
    console.error("set SWITCHBOARD_CONNECTION_STRING and WEBHOOK_SECRET (and optionally PORT)");
    process.exit(2);
  }
  if (secrets.length === 0) {
    console.error("WEBHOOK_SECRET is not set: the registration check will pass, webhooks get 503 until you restart with the secret");
  }
  const port = Number(process.env.PORT || 3000);
  const server = createApp({ connectionString, webhookSecrets: secrets });
  server.listen(port, process.env.HOST || "127.0.0.1", () => {
    console.log(`node-chat listening on http://${server.address().address}:${server.address().port}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
