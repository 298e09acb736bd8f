// Helpers of the cluster scenarios. e2e/cluster_test.go starts three
// gateway nodes on one NATS, the example chat app (negotiating through the
// gateway so clients are spread over live nodes) and a control server, then
// runs one scenario file here with `node --test cluster/<file>.mjs`. The
// files are not named *.test.mjs so the single-node run of test/interop/
// does not pick them up.
import { CONTROL_URL, getJSON, signalR, withTimeout } from "../helpers.mjs";

export * from "../helpers.mjs";

// node is the id of the node a connection is on: connection ids start with
// their node's id and a dot.
export const nodeOf = (conn) => conn.connectionId?.split(".")[0];

// direct builds a connection for user that negotiates straight to node
// (the control server answers a redirect to that node's URL).
export function direct(node, user, configure = (b) => b) {
  const b = new signalR.HubConnectionBuilder()
    .withUrl(`${CONTROL_URL}/direct/${node}?user=${encodeURIComponent(user)}`)
    .configureLogging(signalR.LogLevel.Warning);
  const conn = configure(b).build();
  conn.on("system", () => {});
  return conn;
}

// rest calls the server REST API of node through the control server, which
// signs the token; it throws unless the status is want.
export async function rest(node, method, path, body, want = 202) {
  const res = await withTimeout(getJSON(`${CONTROL_URL}/rest/${node}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ method, path, body }),
  }), `${method} ${path} on ${node}`);
  if (res.status !== want) throw new Error(`${method} ${path} on ${node}: status ${res.status}, want ${want}: ${res.body}`);
  return res.body;
}

// Counter counts every invocation of target on a connection by its first
// string argument, to prove nothing arrives twice.
export class Counter {
  constructor(conn, target, pick = (...args) => args.join("|")) {
    this.counts = new Map();
    this.waiters = [];
    conn.on(target, (...args) => {
      const k = pick(...args);
      this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
      this.waiters = this.waiters.filter((w) => !w());
    });
  }

  count(key) {
    return this.counts.get(key) ?? 0;
  }

  // seen resolves once key arrived at least once (bounded).
  seen(key, what = key) {
    return withTimeout(new Promise((resolve) => {
      const check = () => (this.count(key) > 0 ? (resolve(), true) : false);
      if (!check()) this.waiters.push(check);
    }), what);
  }
}
