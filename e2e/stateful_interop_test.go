package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/node"
)

// TestInteropStatefulReconnect: the stock client in Node with
// withStatefulReconnect(), on WebSockets with either protocol, goes
// through a TCP proxy the test cuts under traffic both ways. The client
// reopens its socket on the same connection, every message sent meanwhile
// arrives exactly once and in order, and the function sees no
// disconnected/connected pair; a drop that outlasts the gateway's window
// does end the connection with disconnected. TestInteropBrowser runs the
// cut in Chromium.
func TestInteropStatefulReconnect(t *testing.T) {
	t.Parallel()
	t.Run("cut", func(t *testing.T) {
		t.Parallel()
		// The default window (30 s): the client comes back well within it.
		startMatrix(t).runNode(t, "node.mjs", "SUITE=stateful", "COMBOS=WebSockets/json WebSockets/messagepack")
	})
	t.Run("window", func(t *testing.T) {
		t.Parallel()
		// The proxy refuses the client's new socket, so it cannot come back
		// however long the window; a short one keeps the wait short.
		a := startMatrix(t, func(c *node.Config) { c.StatefulReconnectWindow = statefulWindow })
		a.runNode(t, "node.mjs", "SUITE=statefulwindow", "COMBOS=WebSockets/json")
	})
}

// statefulWindow is the reconnect window of TestInteropStatefulReconnect's
// window case.
const statefulWindow = 2 * time.Second

// cutter is a TCP proxy in front of the node whose connections the test
// cuts, and which can refuse new ones for a while: a network drop.
type cutter struct {
	ln     net.Listener
	target string

	mu       sync.Mutex // guards the fields below
	conns    map[net.Conn]struct{}
	blocked  bool
	accepted int
	cuts     int
}

// addCutter puts a cutter in front of the node; a client negotiating with
// ?via=name goes through it.
func (a *matrixApp) addCutter(name string) {
	t := a.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: a.g.node.Addr().String(), conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.serve(&wg)
	}()
	t.Cleanup(func() {
		ln.Close()
		c.cut(false)
		wg.Wait()
	})
	cs := a.g.cs
	cs.Endpoint = "http://" + ln.Addr().String()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.vias[name] = cs
	if a.cutters == nil {
		a.cutters = map[string]*cutter{}
	}
	a.cutters[name] = c
}

func (c *cutter) serve(wg *sync.WaitGroup) {
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.blocked {
			c.mu.Unlock()
			in.Close()
			continue
		}
		c.accepted++
		c.mu.Unlock()
		out, err := net.Dial("tcp", c.target)
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		c.conns[in], c.conns[out] = struct{}{}, struct{}{}
		c.mu.Unlock()
		wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			c.mu.Lock()
			delete(c.conns, dst)
			delete(c.conns, src)
			c.mu.Unlock()
		}
		go pipe(out, in)
		go pipe(in, out)
	}
}

// cut closes every proxied connection at once, both sides, as a network
// drop would; block refuses new connections until a cut without it. It
// returns how many connections it closed.
func (c *cutter) cut(block bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocked = block
	n := len(c.conns)
	for conn := range c.conns {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not a clean FIN
		}
		conn.Close()
	}
	c.cuts++
	return n
}

func (c *cutter) stats() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[string]int{"accepted": c.accepted, "cuts": c.cuts, "open": len(c.conns)}
}

func (a *matrixApp) cutterOf(w http.ResponseWriter, via string) *cutter {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.cutters[via]
	if c == nil {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("no cutter named %q", via))
	}
	return c
}

// cut answers POST /ctl/cut {via, block}: the cutter's connections cut,
// and its counts.
func (a *matrixApp) cut(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Via   string
		Block bool
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	c := a.cutterOf(w, in.Via)
	if c == nil {
		return
	}
	n := c.cut(in.Block)
	st := c.stats()
	st["closed"] = n
	writeJSONBody(w, http.StatusOK, st)
}

// stream answers POST /ctl/stream {connectionId, count, cutAt, via}: it
// sends target "seq" with arguments [1] … [count] to the connection
// through the REST API, one after another, and cuts via's connections
// right after [cutAt] went out; the answer is the cutter's counts.
func (a *matrixApp) stream(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ConnectionID string
		Count, CutAt int
		Via          string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	c := a.cutterOf(w, in.Via)
	if c == nil {
		return
	}
	closed := -1
	for i := 1; i <= in.Count; i++ {
		ctx, cancel := context.WithTimeout(r.Context(), requestWait)
		err := a.rest.Hub(matrixHub).Connection(in.ConnectionID).Send(ctx, "seq", i)
		cancel()
		if err != nil {
			writeJSONError(w, http.StatusBadGateway, fmt.Sprintf("REST send %d of %d: %v", i, in.Count, err))
			return
		}
		if i == in.CutAt {
			closed = c.cut(false)
		}
	}
	st := c.stats()
	st["closed"] = closed
	writeJSONBody(w, http.StatusOK, st)
}

// tallied answers GET /ctl/tally?connectionId=ID&want=N with the arguments
// of the connection's "tally" sends, in the order the function got them,
// once there are N of them (bounded: 504 after waitFor, with what came).
func (a *matrixApp) tallied(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("connectionId")
	var want int
	fmt.Sscan(r.URL.Query().Get("want"), &want)
	deadline := time.After(waitFor)
	for {
		a.mu.Lock()
		got := append([]json.RawMessage(nil), a.tallies[id]...)
		changed := a.changed
		a.mu.Unlock()
		if len(got) >= want {
			writeJSONBody(w, http.StatusOK, got)
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-deadline:
			writeJSONError(w, http.StatusGatewayTimeout, fmt.Sprintf("%d tally sends within %s, want %d: %s", len(got), waitFor, want, joinRaw(got)))
			return
		}
	}
}

func joinRaw(vs []json.RawMessage) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// eventsOf answers GET /ctl/events?connectionId=ID with the names of the
// connection's events the function got so far, in order.
func (a *matrixApp) eventsOf(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("connectionId")
	a.mu.Lock()
	names := []string{}
	for _, ev := range a.events {
		if ev.ConnectionID == id {
			names = append(names, ev.Event)
		}
	}
	a.mu.Unlock()
	writeJSONBody(w, http.StatusOK, names)
}
