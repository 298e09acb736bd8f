// An app with no access key: it holds only a token of an OpenID Connect
// issuer (as a workload identity would), mints a client token through the
// gateway's :generateToken with it, connects the stock @microsoft/signalr
// client with that token, and pushes a message to it through REST with the
// same OIDC token. Run by e2e/identity_test.go (TestOIDCInterop) with
// GATEWAY_URL, HUB and OIDC_TOKEN set; exits non-zero on any failure.
import * as signalR from "@microsoft/signalr";

const WAIT_MS = 10_000;

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this through \`go test -run TestOIDCInterop ./e2e/\``);
  return v;
}

const gateway = env("GATEWAY_URL").replace(/\/+$/, "");
const hub = env("HUB");
const oidc = env("OIDC_TOKEN");

function withTimeout(p, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function rest(path, body) {
  const res = await withTimeout(fetch(`${gateway}/api/hubs/${hub}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${oidc}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  }), `POST ${path}`);
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const { token, url } = await rest("/:generateToken?userId=keyless-user&minutesToExpire=5");
if (!token || !url) throw new Error(`:generateToken answered no token or url`);

const conn = new signalR.HubConnectionBuilder()
  .withUrl(url, { accessTokenFactory: () => token })
  .configureLogging(signalR.LogLevel.Warning)
  .build();
const got = new Promise((resolve) => conn.on("news", (...args) => resolve(args)));
await withTimeout(conn.start(), "the client to connect with the minted token");

await rest("/users/keyless-user/:send", { target: "news", arguments: ["pushed keylessly", 14] });
const args = await withTimeout(got, "the message sent through REST with the OIDC token");
if (JSON.stringify(args) !== JSON.stringify(["pushed keylessly", 14])) {
  throw new Error(`got arguments ${JSON.stringify(args)}`);
}
await conn.stop();
console.log("keyless app: minted a client token, connected, and received the REST push");
