// Shared helpers of the interop tests. The Go driver (e2e/interop_test.go)
// starts the gateway, the example chat app and a control server, then runs
// `node --test` here with APP_URL, GATEWAY_URL and CONTROL_URL set.
import * as signalR from "@microsoft/signalr";

export { signalR };

// Every wait is bounded so a broken gateway fails the test instead of hanging.
export const WAIT_MS = 10_000;
export const TEST_TIMEOUT_MS = 30_000;

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run these tests through \`go test -run Interop ./e2e/\``);
  return v.replace(/\/+$/, "");
}

export const APP_URL = env("APP_URL");
export const CONTROL_URL = env("CONTROL_URL");

// withTimeout rejects when p has not settled within ms, naming what it awaited.
export function withTimeout(p, what, ms = WAIT_MS) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

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

// Inbox records the invocations of some targets on a connection; next()
// waits for the next one matching a predicate, skipping others of the target.
export class Inbox {
  constructor(conn, ...targets) {
    this.items = new Map(targets.map((t) => [t, []]));
    this.waiters = [];
    for (const target of targets) {
      conn.on(target, (...args) => {
        this.items.get(target).push(args);
        this.waiters = this.waiters.filter((w) => !w());
      });
    }
  }

  // next resolves with the arguments of the first unconsumed invocation of
  // target that satisfies pred, consuming it and everything of that target
  // before it.
  next(target, pred = () => true) {
    const take = () => {
      const list = this.items.get(target);
      const i = list.findIndex((args) => pred(...args));
      if (i < 0) return undefined;
      const [args] = list.splice(0, i + 1).slice(-1);
      return args;
    };
    return withTimeout(
      new Promise((resolve) => {
        const tryTake = () => {
          const args = take();
          if (args === undefined) return false;
          resolve(args);
          return true;
        };
        if (!tryTake()) this.waiters.push(tryTake);
      }),
      `${target} matching ${pred}`,
    );
  }

  // all returns every invocation of target received so far.
  all(target) {
    return [...this.items.get(target)];
  }
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

export const unique = (prefix) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
