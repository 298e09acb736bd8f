// The stock-client matrix: what an app does with @microsoft/signalr —
// negotiate (through the app's redirect and directly), invoke with a result
// and with an error, broadcast, group and user sends, REST sends, a rejected
// connect and the disconnected event — on one transport and hub protocol at
// a time, and with every combination in one group. fallback.mjs and
// stateful.mjs hold the cases where the client chooses its transport and
// where its socket is cut; suites.mjs names them all.
//
// e2e/matrix_test.go serves the app this talks to (negotiate, tokens, the
// hub's function, control endpoints) and runs the cases in Node (node.mjs)
// and in headless Chromium (browser.mjs, page.html). The files load in
// both: the client library comes in as an argument, and they use nothing
// but fetch, btoa, TextEncoder and timers.
import { Inbox, unique, withTimeout } from "../common.mjs";

// A combo is a transport and a hub protocol, such as
// {transport: "WebSockets", protocol: "messagepack"}; the Go test passes the
// ones to run as "WebSockets/messagepack" and so on.
export const parseCombos = (list) =>
  list.split(/[\s,]+/).filter(Boolean).map((c) => {
    const [transport, protocol] = c.split("/");
    return { transport, protocol };
  });

export const comboName = (c) => `${c.transport}/${c.protocol}`;

// HUB is the hub of the matrix; its function is matrixApp.handle in Go.
export const HUB = "matrix";

// Every binary argument the function sends starts with these bytes (base64
// "+/8A": both characters JSON clients must keep apart from base64url's),
// followed by the UTF-8 of the text it goes with.
const MARK = [0xfb, 0xff, 0x00];

export function markedBytes(text) {
  return Uint8Array.from([...MARK, ...new TextEncoder().encode(text)]);
}

// binaryAs is how the function's binary argument for text reaches a client
// speaking protocol: bytes over MessagePack, their standard base64 over JSON
// (the gateway's mapping, protocol/msgpack_value.go).
export function binaryAs(protocol, text) {
  const bytes = markedBytes(text);
  return protocol === "messagepack" ? bytes : btoa(String.fromCharCode(...bytes));
}

// ---- assertions (node:assert is not in browsers)

function show(v) {
  if (v instanceof Uint8Array) return `Uint8Array[${[...v]}]`;
  if (v === undefined) return "undefined";
  return JSON.stringify(v, (_, x) => (x instanceof Uint8Array ? `Uint8Array[${[...x]}]` : x));
}

function same(a, b) {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && a.every((x, i) => x === b[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same(a[k], b[k]));
  }
  return Object.is(a, b);
}

export function equal(got, want, what) {
  if (!same(got, want)) throw new Error(`${what}: got ${show(got)}, want ${show(want)}`);
}

export function ok(cond, what) {
  if (!cond) throw new Error(what);
}

export async function rejects(p, re, what) {
  let got;
  try {
    got = await p;
  } catch (err) {
    const msg = String(err?.message ?? err);
    if (!re.test(msg)) throw new Error(`${what}: failed with "${msg}", want an error matching ${re}`);
    return msg;
  }
  throw new Error(`${what}: got ${show(got)}, want an error matching ${re}`);
}

// ---- the client side of one case

// Log records what the client logs (Trace, with message contents): the
// transports it selected, the handshakes it sent, the WebSockets it opened,
// and the lines a failure prints as the wire trace.
class Log {
  constructor(signalR, name) {
    this.signalR = signalR;
    this.name = name;
    this.lines = [];
    this.dropped = 0;
    this.selected = [];
    this.handshakes = [];
    this.webSockets = 0; // sockets opened: stateful reconnect opens another
    this.watchers = []; // functions called with each message
  }

  log(level, message) {
    for (const w of this.watchers) w(message);
    const m = /^Selecting transport '(\w+)'/.exec(message);
    if (m) this.selected.push(m[1]);
    if (message.startsWith("WebSocket connected to ")) this.webSockets++;
    const h = /sending data\. String data of length \d+\. Content: '\{"protocol":"(\w+)","version":(\d+)\}\x1e'/.exec(message);
    if (h) this.handshakes.push({ protocol: h[1], version: Number(h[2]) });
    if (this.lines.length >= 200) {
      this.lines.shift();
      this.dropped++;
    }
    this.lines.push(`${new Date().toISOString().slice(11, 23)} ${this.name} ${this.signalR.LogLevel[level]}: ${message}`);
  }

  text() {
    return (this.dropped ? `  (${this.dropped} earlier lines dropped)\n` : "") + this.lines.map((l) => `  ${l}`).join("\n");
  }
}

// Scope is one run of a case: the clients it opened, closed at its end,
// and their logs for the failure message.
class Scope {
  constructor(matrix, combo, combos) {
    this.m = matrix;
    this.combo = combo;
    this.combos = combos;
    this.transport = combo?.transport;
    this.protocol = combo?.protocol;
    this.conns = [];
    this.logs = [];
  }

  // build returns a connection for user, not started. Options: transport
  // (a name, or null for the client's own choice), protocol, direct (token
  // from the app, negotiate with the gateway itself; else the app's
  // redirect negotiate), via (the app's name for a gateway address: "" is
  // the node itself, others a proxy in front of it), hub, and targets to
  // record in the returned inbox.
  async build(user, opts = {}) {
    const { signalR, MessagePackHubProtocol } = this.m.lib;
    const transport = "transport" in opts ? opts.transport : this.transport;
    const protocol = opts.protocol ?? this.protocol;
    const hub = opts.hub ?? HUB;
    const via = opts.via ?? "";
    const log = new Log(signalR, `[${user} ${transport ?? "any"}/${protocol}]`);
    const options = { logMessageContent: true };
    if (transport) options.transport = signalR.HttpTransportType[transport];
    let url;
    if (opts.direct) {
      const q = new URLSearchParams({ hub, user, via });
      const { url: gatewayURL, accessToken } = await this.m.ctl(`token?${q}`);
      url = gatewayURL;
      options.accessTokenFactory = () => accessToken;
    } else {
      url = `${this.m.appURL}/app/${hub}?${new URLSearchParams({ user, via })}`;
    }
    let b = new signalR.HubConnectionBuilder().withUrl(url, options).configureLogging(log);
    if (protocol === "messagepack") b = b.withHubProtocol(new MessagePackHubProtocol());
    if (opts.stateful) b = b.withStatefulReconnect();
    const conn = b.build();
    const inbox = new Inbox(conn, ...(opts.targets ?? []));
    this.logs.push(log);
    return { conn, inbox, log, user, transport };
  }

  // open builds and starts a connection (bounded); the scope stops it.
  async open(user, opts = {}) {
    return this.start(await this.build(user, opts));
  }

  // start starts a connection from build (bounded); the scope stops it.
  async start(c) {
    this.conns.push(c.conn);
    try {
      await withTimeout(c.conn.start(), `start of ${c.user}`);
    } catch (err) {
      const want = c.transport;
      if (want && !c.log.selected.includes(want)) {
        throw new Error(`the client never selected ${want}: the gateway's negotiate did not offer it for this protocol (${err.message})`);
      }
      throw err;
    }
    return c;
  }

  bin(text) {
    return binaryAs(this.protocol, text);
  }

  async close() {
    await Promise.allSettled(this.conns.map((c) => withTimeout(c.stop(), "stop")));
  }

  trace() {
    return this.logs.map((l) => l.text()).join("\n");
  }
}

export const invoke = (c, target, ...args) => withTimeout(c.conn.invoke(target, ...args), `${c.user} invoking ${target}`);

// Matrix runs cases against the app at appURL with the client library lib
// ({signalR, MessagePackHubProtocol}).
export class Matrix {
  constructor(lib, appURL) {
    this.lib = lib;
    this.appURL = appURL.replace(/\/+$/, "");
  }

  // ctl calls the app's control endpoint path (GET, or POST with body) and
  // returns its JSON answer; any status but 2xx fails.
  async ctl(path, body, ms = 20_000) {
    const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const res = await withTimeout(fetch(`${this.appURL}/ctl/${path}`, init), `control ${path}`, ms);
    const text = await res.text();
    if (!res.ok) throw new Error(`control ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  // run runs one case for combo (null for the suites that choose their
  // own; the mixed suite mixes combos); a failure's message carries the
  // clients' logs.
  async run(c, combo, combos = []) {
    const s = new Scope(this, combo, combos);
    try {
      await c.fn(s);
    } catch (err) {
      const e = new Error(`${err?.message ?? err}\nclient logs:\n${s.trace()}`);
      e.stack = `${e.message}\n${err?.stack ?? ""}`;
      throw e;
    } finally {
      await s.close();
    }
  }
}

// ---- the cases

// wantConnected checks a started client: the transport it used, and who
// the gateway and the function think it is.
async function wantConnected(s, c) {
  equal(c.log.selected, [s.transport], "transports the client selected");
  equal(await invoke(c, "whoami"), { connectionId: c.conn.connectionId, userId: c.user }, "whoami");
}

// CASES run on each transport and protocol.
export const CASES = [
  {
    name: "negotiates through the app's redirect",
    fn: async (s) => wantConnected(s, await s.open(unique("redirected"))),
  },
  {
    name: "negotiates directly with the gateway",
    fn: async (s) => wantConnected(s, await s.open(unique("direct"), { direct: true })),
  },
  {
    name: "invoke returns the function's result",
    fn: async (s) => {
      const c = await s.open(unique("invoker"));
      const args = ["text é☃😀", 42, -7, 1.5, true, null, { nested: [1, "two", { deep: false }] }, []];
      equal(await invoke(c, "echo", ...args), args, "echo");
      if (s.protocol === "messagepack") {
        // Bytes reach the function as the documented {"$binary": base64}
        // and come back as bytes.
        const bytes = Uint8Array.of(0xfb, 0xff, 0x00, 1, 2, 3);
        equal(await invoke(c, "echo", bytes, "after"), [bytes, "after"], "echo of bytes");
        equal(JSON.parse(await invoke(c, "describe", bytes)), [{ $binary: "+/8AAQID" }], "what the function got for bytes");
      }
      equal(JSON.parse(await invoke(c, "describe", "x", 1)), ["x", 1], "what the function got");
    },
  },
  {
    name: "invoke rejects with the function's error",
    fn: async (s) => {
      const c = await s.open(unique("failer"));
      await rejects(invoke(c, "fail", "the room is full"), /the room is full/, "fail");
      await rejects(invoke(c, "nosuch"), /unknown method "nosuch"/, "an unknown method");
      // The connection survives failed invocations.
      equal(await invoke(c, "echo", "still here"), ["still here"], "echo after errors");
    },
  },
  {
    name: "a broadcast reaches every client",
    fn: async (s) => {
      const a = await s.open(unique("alice"), { targets: ["broadcast"] });
      const b = await s.open(unique("bob"), { targets: ["broadcast"] });
      const text = unique("hello");
      equal(await invoke(a, "broadcast", text), "sent", "broadcast");
      for (const c of [a, b]) {
        const got = await c.inbox.next("broadcast", (_, t) => t === text);
        equal(got, [a.user, text], `${c.user}'s broadcast`);
      }
    },
  },
  {
    name: "a group send reaches members only",
    fn: async (s) => {
      const group = unique("room");
      const member = await s.open(unique("member"), { targets: ["group", "broadcast"] });
      const outsider = await s.open(unique("outsider"), { targets: ["group", "broadcast"] });
      equal(await invoke(member, "join", group), group, "join");
      const text = unique("members-only");
      equal(await invoke(member, "toGroup", group, text), "sent", "toGroup");
      equal(await member.inbox.next("group"), [group, member.user, text, s.bin(text)], "the member's group message");

      // A broadcast sent after the group message is the barrier: once the
      // outsider has it, a group message meant for it would have come too.
      const barrier = unique("barrier");
      await invoke(member, "broadcast", barrier);
      await outsider.inbox.next("broadcast", (_, t) => t === barrier);
      equal(outsider.inbox.all("group"), [], "the outsider's group messages");

      // After leaving, the member gets no more of the group's messages.
      equal(await invoke(member, "leave", group), group, "leave");
      await invoke(outsider, "toGroup", group, "after leave");
      const barrier2 = unique("barrier");
      await invoke(outsider, "broadcast", barrier2);
      await member.inbox.next("broadcast", (_, t) => t === barrier2);
      equal(member.inbox.all("group"), [], "group messages after leaving");
    },
  },
  {
    name: "a user send reaches every connection of that user only",
    fn: async (s) => {
      const user = unique("twice");
      const first = await s.open(user, { targets: ["user"] });
      const second = await s.open(user, { targets: ["user"] });
      const other = await s.open(unique("other"), { targets: ["user", "broadcast"] });
      const text = unique("for-you");
      equal(await invoke(other, "toUser", user, text), "sent", "toUser");
      for (const c of [first, second]) equal(await c.inbox.next("user"), [other.user, text], `${c.conn.connectionId}'s user message`);
      const barrier = unique("barrier");
      await invoke(other, "broadcast", barrier);
      await other.inbox.next("broadcast", (_, t) => t === barrier);
      equal(other.inbox.all("user"), [], "the other user's user messages");
    },
  },
  {
    name: "REST sends reach the connection, the user and the group",
    fn: async (s) => {
      const group = unique("rest-room");
      const c = await s.open(unique("rest"), { targets: ["rest"] });
      equal(await invoke(c, "join", group), group, "join");
      for (const [to, name] of [["connection", c.conn.connectionId], ["user", c.user], ["group", group], ["all", ""]]) {
        const text = unique(`rest-${to}`);
        await s.m.ctl("rest", { to, name, text });
        equal(await c.inbox.next("rest", (_, t) => t === text), [to, text, s.bin(text)], `REST send to ${to}`);
      }
    },
  },
  {
    name: "a connect the function rejects fails start with its reason",
    fn: async (s) => {
      const user = unique("blocked");
      const c = await s.build(user);
      const gated = s.transport !== "WebSockets";
      let released = false;
      if (gated) {
        // The function answers once the client's handshake POST completed
        // (matrixApp.gate in Go says why).
        await s.m.ctl(`gate?user=${encodeURIComponent(user)}`, {});
        c.log.watchers.push((message) => {
          if (released || !/ transport\) request complete\./.test(message)) return;
          released = true;
          s.m.ctl(`release?user=${encodeURIComponent(user)}`, {}).catch((err) => c.log.log(0, `release: ${err.message}`));
        });
      }
      await rejects(withTimeout(c.conn.start(), `start of ${user}`), new RegExp(`user "${user}" may not connect`), "start");
      equal(c.conn.state, s.m.lib.signalR.HubConnectionState.Disconnected, "state after the rejection");
      equal(released, gated, "the function held until the handshake POST completed");
    },
  },
  {
    name: "connected and disconnected reach the function",
    fn: async (s) => {
      const c = await s.open(unique("leaver"));
      const id = c.conn.connectionId;
      equal((await s.m.ctl(`event?event=connected&connectionId=${encodeURIComponent(id)}`)).userId, c.user, "connected's user");
      await withTimeout(c.conn.stop(), "stop");
      const ev = await s.m.ctl(`event?event=disconnected&connectionId=${encodeURIComponent(id)}`);
      equal(ev.userId, c.user, "disconnected's user");
    },
  },
];

// MIXED runs once with a client on every combo at the same time.
export const MIXED = [
  {
    name: "clients on every transport and protocol in one group get the same message",
    fn: async (s) => {
      const group = unique("mixed");
      const members = [];
      ok(s.combos.length > 1, `mixing ${s.combos.length} combos`);
      for (const combo of s.combos) {
        const c = await s.open(unique(combo.transport), { ...combo, targets: ["group", "rest"] });
        equal(await invoke(c, "join", group), group, `${comboName(combo)} joining`);
        members.push({ combo, c });
      }
      const text = unique("to-all");
      equal(await invoke(members[0].c, "toGroup", group, text), "sent", "toGroup");
      const rest = unique("rest-to-all");
      await s.m.ctl("rest", { to: "group", name: group, text: rest });
      for (const { combo, c } of members) {
        const want = binaryAs(combo.protocol, text);
        equal(await c.inbox.next("group"), [group, members[0].c.user, text, want], `${comboName(combo)}'s group message`);
        equal(await c.inbox.next("rest", (_, t) => t === rest), ["group", rest, binaryAs(combo.protocol, rest)], `${comboName(combo)}'s REST group message`);
      }
    },
  },
];

