// Stateful reconnect with the stock client (withStatefulReconnect), on
// WebSockets with either protocol: e2e/stateful_interop_test.go puts TCP
// proxies in front of the node ("via" cut and cutlong) that it cuts on the
// control endpoint's word, as a network drop would. See cases.mjs for how
// cases run.
import { unique, withTimeout } from "../common.mjs";
import { equal, invoke, ok } from "./cases.mjs";

const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

// wantStateful checks that the client turned stateful reconnect on: it
// does (handshake version 2) only when negotiate answered
// useStatefulReconnect.
function wantStateful(c) {
  equal(
    c.log.handshakes.map((h) => h.version),
    [2],
    "handshake versions (2 when the gateway's negotiate answered useStatefulReconnect: true)",
  );
}

export const STATEFUL = [
  {
    name: "a socket cut under traffic resumes: nothing lost or repeated, no disconnected",
    fn: async (s) => {
      // The gateway sends seq 1…M through the REST API and the proxy cuts
      // the socket right after seq CUT went out. The client answers the
      // seq messages around the cut with a tally send each, so its sends
      // straddle the cut too; 30 of them, fewer than a connection may
      // have queued at the gateway (32), which drops sends beyond that.
      const M = 200;
      const CUT = 50;
      const tallies = range(30).map((i) => CUT - 15 + i);
      const c = await s.build(unique("resumer"), { via: "cut", stateful: true });
      const seqs = [];
      const sendErrors = [];
      let reconnecting = 0;
      let closed = null;
      let done;
      const all = new Promise((resolve) => (done = resolve));
      c.conn.on("seq", (i) => {
        seqs.push(i);
        if (tallies.includes(i)) c.conn.send("tally", i).catch((err) => sendErrors.push(`tally ${i}: ${err.message}`));
        if (seqs.length >= M) done();
      });
      c.conn.onreconnecting(() => reconnecting++);
      c.conn.onclose((err) => (closed = err ?? new Error("closed without an error")));
      await s.start(c);
      wantStateful(c);
      const id = c.conn.connectionId;

      const st = await s.m.ctl("stream", { connectionId: id, count: M, cutAt: CUT, via: "cut" });
      ok(st.closed >= 1, `the cut closed ${st.closed} proxied connections: the client's socket was not among them`);
      await withTimeout(all, `${M} seq messages`).catch((err) => {
        throw new Error(`${err.message}: got ${seqs.length}: ${JSON.stringify(seqs)}`);
      });
      equal(seqs, range(M), "seq messages, in order");
      const tallied = `tally?connectionId=${encodeURIComponent(id)}&want=${tallies.length}`;
      equal(await s.m.ctl(tallied), tallies, "the function's tally sends, in order");
      equal(sendErrors, [], "failed sends");

      // An invocation's round trip after all that is the barrier: nothing
      // arrives twice behind it.
      equal(await invoke(c, "whoami"), { connectionId: id, userId: c.user }, "whoami after the cut");
      equal(seqs.length, M, "seq messages after the barrier");
      equal((await s.m.ctl(tallied)).length, tallies.length, "tally sends after the barrier");
      equal(await s.m.ctl(`events?connectionId=${encodeURIComponent(id)}`), ["connect", "connected"], "the function's events of the connection");
      // The cut closed the first socket; the client resumed on a second.
      equal(c.log.webSockets, 2, "WebSockets the client opened");
      equal(reconnecting, 0, "onreconnecting calls");
      equal(closed, null, "onclose's error");
      equal(c.conn.connectionId, id, "the connection id after the cut");
    },
  },
];

// STATEFUL_WINDOW waits out the gateway's window, so it runs on one combo
// and on a node with a short window.
export const STATEFUL_WINDOW = [
  {
    name: "a drop that outlasts the window ends the connection with disconnected",
    timeout: 60_000,
    fn: async (s) => {
      const c = await s.build(unique("gone"), { via: "cutlong", stateful: true });
      const closed = new Promise((resolve) => c.conn.onclose(resolve));
      await s.start(c);
      wantStateful(c);
      const id = c.conn.connectionId;
      try {
        // The proxy refuses the client's new socket, so the client gives
        // up at once; the gateway waits out its window (2 s on the node of
        // TestInteropStatefulReconnect's window case, 30 s by default).
        const st = await s.m.ctl("cut", { via: "cutlong", block: true });
        ok(st.closed >= 1, `the cut closed ${st.closed} proxied connections: the client's socket was not among them`);
        await withTimeout(closed, "the client giving up");
        const ev = await s.m.ctl(`event?event=disconnected&connectionId=${encodeURIComponent(id)}&within=30s`, undefined, 35_000);
        equal(ev.userId, c.user, "disconnected's user");
        ok(/^connection lost and not resumed within /.test(ev.reason), `disconnected's reason ${JSON.stringify(ev.reason)}, want "connection lost and not resumed within …"`);
        equal(await s.m.ctl(`events?connectionId=${encodeURIComponent(id)}`), ["connect", "connected", "disconnected"], "the function's events of the connection");
      } finally {
        await s.m.ctl("cut", { via: "cutlong", block: false });
      }
    },
  },
];
