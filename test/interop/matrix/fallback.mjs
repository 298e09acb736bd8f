// The cases where the stock client chooses its transport and the way to
// some is closed; see cases.mjs for how they run.
import { unique, withTimeout } from "../common.mjs";
import { equal, invoke, rejects } from "./cases.mjs";

// works checks a connection that fell back: it invokes, and it receives.
async function works(s, c) {
  equal(await invoke(c, "whoami"), { connectionId: c.conn.connectionId, userId: c.user }, "whoami");
  const text = unique("after-fallback");
  equal(await invoke(c, "broadcast", text), "sent", "broadcast");
  equal(await c.inbox.next("broadcast", (_, t) => t === text), [c.user, text], "the broadcast");
}

// FALLBACK lets the client choose its transport (all allowed) where the way
// to some is closed. "via" names a proxy in front of the gateway that
// refuses WebSocket upgrades (nows) or those and event streams too
// (nostreams), as corporate proxies do; the hubs matrix_sse_lp and
// matrix_lp refuse transports by their own setting, so negotiate does not
// offer them.
export const FALLBACK = [
  {
    name: "a proxy that refuses WebSocket: JSON falls back to Server-Sent Events",
    fn: async (s) => {
      const c = await s.open(unique("proxied"), { transport: null, protocol: "json", via: "nows", targets: ["broadcast"] });
      equal(c.log.selected, ["WebSockets", "ServerSentEvents"], "transports the client selected");
      await works(s, c);
    },
  },
  {
    name: "a proxy that refuses WebSocket: MessagePack falls back to Long Polling",
    fn: async (s) => {
      const c = await s.open(unique("proxied"), { transport: null, protocol: "messagepack", via: "nows", targets: ["broadcast"] });
      equal(c.log.selected, ["WebSockets", "LongPolling"], "transports the client selected");
      await works(s, c);
    },
  },
  {
    name: "a proxy that refuses WebSocket and event streams: JSON falls back to Long Polling",
    fn: async (s) => {
      const c = await s.open(unique("proxied"), { transport: null, protocol: "json", via: "nostreams", targets: ["broadcast"] });
      equal(c.log.selected, ["WebSockets", "ServerSentEvents", "LongPolling"], "transports the client selected");
      await works(s, c);
    },
  },
];

// HUB_TRANSPORTS needs the hubs' transports setting.
export const HUB_TRANSPORTS = [
  {
    name: "a hub without WebSocket: JSON uses Server-Sent Events",
    fn: async (s) => {
      const c = await s.open(unique("nows"), { transport: null, protocol: "json", hub: "matrix_sse_lp", targets: ["broadcast"] });
      equal(c.log.selected, ["ServerSentEvents"], "transports the client selected");
      await works(s, c);
    },
  },
  {
    name: "a hub without WebSocket: MessagePack uses Long Polling",
    fn: async (s) => {
      const c = await s.open(unique("nows"), { transport: null, protocol: "messagepack", hub: "matrix_sse_lp", targets: ["broadcast"] });
      equal(c.log.selected, ["LongPolling"], "transports the client selected");
      await works(s, c);
    },
  },
  {
    name: "a hub with Long Polling only: JSON uses Long Polling",
    fn: async (s) => {
      const c = await s.open(unique("lponly"), { transport: null, protocol: "json", hub: "matrix_lp", targets: ["broadcast"] });
      equal(c.log.selected, ["LongPolling"], "transports the client selected");
      await works(s, c);
    },
  },
  {
    name: "a client that asks for WebSockets only on a hub without them fails to start, naming what negotiate offered",
    fn: async (s) => {
      const user = unique("wsonly");
      const c = await s.build(user, { transport: "WebSockets", protocol: "json", hub: "matrix_lp" });
      // The stock client's own words for a negotiate that offered only
      // transports it was told not to use.
      await rejects(
        withTimeout(c.conn.start(), `start of ${user}`),
        /Unable to connect to the server with any of the available transports\. LongPolling failed: Error: 'LongPolling' is disabled by the client\./,
        "start",
      );
      equal(c.log.selected, [], "transports the client selected");
      equal(c.conn.state, s.m.lib.signalR.HubConnectionState.Disconnected, "state after the failed start");
    },
  },
];
