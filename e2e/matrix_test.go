package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/rest"
	"github.com/switchboard-gw/switchboard/upstream"
)

// The stock-client matrix (issue 11): test/interop/matrix/cases.mjs holds
// the cases, run by the stock @microsoft/signalr client in Node (node.mjs)
// and in headless Chromium (browser.mjs); this file serves what they talk
// to: a real node, and an app with the redirect negotiate, tokens for
// direct negotiate, the hub's function, control endpoints and, for the
// browser, the test page and the client bundles from node_modules.

// matrixCombos are the transports and hub protocols the stock client allows
// together (Server-Sent Events carry text only), as "transport/protocol".
var matrixCombos = []string{
	"WebSockets/json",
	"WebSockets/messagepack",
	"ServerSentEvents/json",
	"LongPolling/json",
	"LongPolling/messagepack",
}

// matrixHub is the hub of the matrix (HUB in cases.mjs).
const matrixHub = "matrix"

// TestInteropMatrix runs the matrix's cases in Node for each transport and
// protocol, then with all of them in one group.
func TestInteropMatrix(t *testing.T) {
	t.Parallel()
	a := startMatrix(t)
	for _, c := range matrixCombos {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			a.runNode(t, "node.mjs", "SUITE=matrix", "COMBOS="+c)
		})
	}
	t.Run("mixed", func(t *testing.T) {
		t.Parallel()
		a.runNode(t, "node.mjs", "SUITE=mixed", "COMBOS="+strings.Join(matrixCombos, " "))
	})
}

// TestInteropBrowser runs the cases in headless Chromium, where the stock
// client uses the browser's own WebSocket, EventSource and fetch, from a
// page on another origin than the gateway's (so CORS counts): the matrix
// on each transport and protocol, all of them in one group, transport
// fallback, the hubs' transports setting and stateful reconnect (the
// window's end, which only waits, runs in Node alone). One browser and one
// page serve every suite: starting them costs more than the cases.
func TestInteropBrowser(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	a := startMatrix(t)
	a.runNode(t, "browser.mjs", "CHROMIUM="+browser, "SUITES=matrix,mixed,fallback,hubtransports,stateful",
		"COMBOS="+strings.Join(matrixCombos, " "))
}

// matrixApp is the app side of the matrix.
type matrixApp struct {
	t    *testing.T
	root string
	g    *gw
	url  string
	// mux serves the app; tests add control endpoints of their own.
	mux  *http.ServeMux
	rest *rest.Client
	// secret signs the webhooks of every hub of the matrix.
	secret string
	mu     sync.Mutex // guards the fields below
	// vias are the gateway addresses a client may be sent to: "" is the
	// node itself, others proxies in front of it (see addVia).
	vias    map[string]negotiate.ConnectionString
	cutters map[string]*cutter
	events  []upstream.Event
	// tallies are the arguments of each connection's "tally" sends.
	tallies map[string][]json.RawMessage
	// gates hold the connect event of a user until the client releases
	// it (see gate).
	gates   map[string]chan struct{}
	changed chan struct{} // closed and replaced when events or tallies grow
}

// startMatrix starts a node with the matrix hub, its function and the app.
func startMatrix(t *testing.T, opts ...nodeOption) *matrixApp {
	t.Helper()
	root := repoRoot(t)
	requireNodeModules(t, filepath.Join(root, "test", "interop"), "npm ci --prefix test/interop")
	g := startNode(t, opts...)
	a := &matrixApp{t: t, root: root, g: g, changed: make(chan struct{}),
		vias: map[string]negotiate.ConnectionString{"": g.cs}}
	rc, err := rest.New(g.cs.String())
	if err != nil {
		t.Fatal(err)
	}
	a.rest = rc

	a.secret = upstream.NewSecret()
	mux := http.NewServeMux()
	a.mux = mux
	mux.Handle("/fn", upstream.Handler([]string{a.secret}, a.handle))
	mux.HandleFunc("POST /app/{hub}/negotiate", a.negotiate)
	mux.HandleFunc("GET /ctl/token", a.negotiate)
	mux.HandleFunc("GET /ctl/event", a.waitEvent)
	mux.HandleFunc("POST /ctl/rest", a.restSend)
	mux.HandleFunc("POST /ctl/gate", a.gate)
	mux.HandleFunc("POST /ctl/release", a.release)
	a.serveBrowserFiles(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a.url = srv.URL

	a.addHub(matrixHub)
	// What fallback.mjs needs: hubs whose transports setting leaves
	// WebSockets out, proxies that refuse WebSockets (and event streams).
	a.addHub("matrix_sse_lp", "transports", []string{"ServerSentEvents", "LongPolling"})
	a.addHub("matrix_lp", "transports", []string{"LongPolling"})
	a.addVia("nows", isWebSocketRequest)
	a.addVia("nostreams", func(r *http.Request) bool { return isWebSocketRequest(r) || isEventStreamRequest(r) })
	// What stateful.mjs needs: TCP proxies the test cuts, and the control
	// endpoints that cut them and count what came through.
	a.addCutter("cut")
	a.addCutter("cutlong")
	mux.HandleFunc("POST /ctl/cut", a.cut)
	mux.HandleFunc("POST /ctl/stream", a.stream)
	mux.HandleFunc("GET /ctl/tally", a.tallied)
	mux.HandleFunc("GET /ctl/events", a.eventsOf)
	return a
}

// addHub creates hub with the matrix function as its upstream; fields are
// more of the hub's settings, as name, value, name, value.
func (a *matrixApp) addHub(hub string, fields ...any) {
	a.t.Helper()
	body := map[string]any{"name": hub, "allowAnonymous": false}
	for i := 0; i+1 < len(fields); i += 2 {
		body[fields[i].(string)] = fields[i+1]
	}
	a.g.admin(http.MethodPost, "/admin/hubs", body, http.StatusCreated)
	a.g.admin(http.MethodPost, "/admin/hubs/"+hub+"/upstreams", map[string]any{
		"name": "matrix-fn", "urlTemplate": a.url + "/fn", "timeout": "5s",
		"events": []string{"connect", "connected", "disconnected", "message:*"}, "secrets": []string{a.secret},
	}, http.StatusCreated)
}

// runNode runs test/interop/matrix/file with `node --test`, APP_URL and env.
func (a *matrixApp) runNode(t *testing.T, file string, env ...string) {
	runNode(t, a.root, append([]string{"APP_URL=" + a.url}, env...),
		"--test", "--test-reporter=spec", filepath.Join("test", "interop", "matrix", file))
}

// negotiate answers the app's redirect negotiate (POST
// /app/{hub}/negotiate) and, with the same body, /ctl/token for a client
// that negotiates with the gateway directly: {url, accessToken} for
// ?user=U, at the gateway address named by ?via=.
func (a *matrixApp) negotiate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hub := r.PathValue("hub")
	if hub == "" {
		hub = q.Get("hub")
	}
	a.mu.Lock()
	cs, ok := a.vias[q.Get("via")]
	a.mu.Unlock()
	if !ok {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("no gateway address named %q", q.Get("via")))
		return
	}
	resp, err := negotiate.NewResponse(cs, hub, q.Get("user"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSONBody(w, http.StatusOK, resp)
}

// marked is the binary argument the function sends with text: the bytes
// fb ff 00 then text, in the gateway's JSON form of bytes.
func marked(text string) map[string]string {
	return map[string]string{"$binary": base64.StdEncoding.EncodeToString(append([]byte{0xfb, 0xff, 0x00}, text...))}
}

// handle is the hub's function.
func (a *matrixApp) handle(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
	a.record(ev)
	user := ev.User()
	switch ev.Event {
	case upstream.EventConnect:
		a.waitGate(ctx, user)
		if strings.HasPrefix(user, "blocked") {
			return nil, upstream.Reject(fmt.Sprintf("user %q may not connect", user))
		}
		return nil, nil
	case upstream.EventConnected, upstream.EventDisconnected:
		return nil, nil
	}
	var args []json.RawMessage
	if err := json.Unmarshal(ev.Arguments, &args); err != nil {
		return nil, fmt.Errorf("arguments must be an array: %w", err)
	}
	str := func(i int) (string, error) {
		var s string
		if i >= len(args) || json.Unmarshal(args[i], &s) != nil || s == "" {
			return "", fmt.Errorf("%s: argument %d must be a non-empty string", ev.Target, i+1)
		}
		return s, nil
	}
	str2 := func() (string, string, error) {
		x, err := str(0)
		if err != nil {
			return "", "", err
		}
		y, err := str(1)
		return x, y, err
	}
	switch ev.Target {
	case "whoami":
		return upstream.NewReply().WithResult(map[string]string{"connectionId": ev.ConnectionID, "userId": user}), nil
	case "echo":
		return upstream.NewReply().WithResult(json.RawMessage(ev.Arguments)), nil
	case "describe": // the arguments as the function got them, as a string
		return upstream.NewReply().WithResult(string(ev.Arguments)), nil
	case "fail":
		msg, err := str(0)
		if err != nil {
			return nil, err
		}
		return upstream.NewReply().WithError(msg), nil
	case "broadcast":
		text, err := str(0)
		if err != nil {
			return nil, err
		}
		return upstream.NewReply().Broadcast("broadcast", user, text).WithResult("sent"), nil
	case "join", "leave":
		group, err := str(0)
		if err != nil {
			return nil, err
		}
		if ev.Target == "join" {
			return upstream.NewReply().AddToGroup(group).WithResult(group), nil
		}
		return upstream.NewReply().RemoveFromGroup(group).WithResult(group), nil
	case "toGroup":
		group, text, err := str2()
		if err != nil {
			return nil, err
		}
		return upstream.NewReply().SendToGroup(group, "group", group, user, text, marked(text)).WithResult("sent"), nil
	case "tally": // a client's send: kept, in the order it came
		a.mu.Lock()
		if a.tallies == nil {
			a.tallies = map[string][]json.RawMessage{}
		}
		a.tallies[ev.ConnectionID] = append(a.tallies[ev.ConnectionID], args...)
		a.notifyLocked()
		a.mu.Unlock()
		return nil, nil
	case "toUser":
		to, text, err := str2()
		if err != nil {
			return nil, err
		}
		return upstream.NewReply().SendToUser(to, "user", user, text).WithResult("sent"), nil
	}
	return nil, fmt.Errorf("unknown method %q", ev.Target)
}

// gate answers POST /ctl/gate?user=U: the function holds U's next
// connect event until POST /ctl/release?user=U (or waitFor, against a
// hang). On Server-Sent Events and Long Polling the stock client awaits
// its handshake POST before it listens for the handshake's answer, and a
// rejection that comes first is an unhandled promise rejection in it
// (Node's test runner fails the case). The gateway answers that POST
// before it acts on the handshake (TestHalfTransportHandshakeAnsweredFirst),
// which leaves the client a few event-loop turns to finish the POST;
// on a loaded machine a function as fast as this one could still win. A
// case whose client releases the gate once its POST completed is
// deterministic, as a real function's round trip makes it in practice.
func (a *matrixApp) gate(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if user == "" {
		writeJSONError(w, http.StatusBadRequest, "user is required")
		return
	}
	a.mu.Lock()
	if a.gates == nil {
		a.gates = map[string]chan struct{}{}
	}
	a.gates[user] = make(chan struct{})
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// release answers POST /ctl/release?user=U: the gate of U opens.
func (a *matrixApp) release(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	a.mu.Lock()
	g, ok := a.gates[user]
	if ok {
		close(g)
		delete(a.gates, user)
	}
	a.mu.Unlock()
	if !ok {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no gate for user %q", user))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// waitGate waits until user's gate, if any, opens (bounded).
func (a *matrixApp) waitGate(ctx context.Context, user string) {
	a.mu.Lock()
	g := a.gates[user]
	a.mu.Unlock()
	if g == nil {
		return
	}
	select {
	case <-g:
	case <-ctx.Done():
	case <-time.After(waitFor):
	}
}

func (a *matrixApp) record(ev *upstream.Event) {
	if ev.Event == upstream.EventMessage {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, *ev)
	a.notifyLocked()
}

// notifyLocked wakes the waiters on a.changed; the caller holds a.mu.
func (a *matrixApp) notifyLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// waitEvent answers GET /ctl/event?event=E&connectionId=ID with the first
// such event the function got, waiting for it (bounded: 504 after waitFor,
// or after ?within= up to a minute, naming the events the connection did
// get).
func (a *matrixApp) waitEvent(w http.ResponseWriter, r *http.Request) {
	name, id := r.URL.Query().Get("event"), r.URL.Query().Get("connectionId")
	within := waitFor
	if d, err := time.ParseDuration(r.URL.Query().Get("within")); err == nil && d > 0 && d <= time.Minute {
		within = d
	}
	deadline := time.After(within)
	for {
		a.mu.Lock()
		changed := a.changed
		var seen []string
		for _, ev := range a.events {
			if ev.ConnectionID != id {
				continue
			}
			if ev.Event == name {
				a.mu.Unlock()
				writeJSONBody(w, http.StatusOK, ev)
				return
			}
			seen = append(seen, ev.Event)
		}
		a.mu.Unlock()
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-deadline:
			writeJSONError(w, http.StatusGatewayTimeout, fmt.Sprintf("no %s event for connection %q within %s; it had %v", name, id, within, seen))
			return
		}
	}
}

// restSend answers POST /ctl/rest {hub, to, name, text}: a send through the
// gateway's REST API to a connection, user or group called name, or to all,
// of target "rest" with arguments [to, text, marked(text)].
func (a *matrixApp) restSend(w http.ResponseWriter, r *http.Request) {
	var in struct{ Hub, To, Name, Text string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.Hub == "" {
		in.Hub = matrixHub
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestWait)
	defer cancel()
	h := a.rest.Hub(in.Hub)
	args := []any{in.To, in.Text, marked(in.Text)}
	var err error
	switch in.To {
	case "connection":
		err = h.Connection(in.Name).Send(ctx, "rest", args...)
	case "user":
		err = h.User(in.Name).Send(ctx, "rest", args...)
	case "group":
		err = h.Group(in.Name).Send(ctx, "rest", args...)
	case "all":
		err = h.Broadcast(ctx, "rest", args...)
	default:
		err = fmt.Errorf("to %q: want connection, user, group or all", in.To)
	}
	if err != nil {
		writeJSONError(w, http.StatusBadGateway, "REST send: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSONBody(w, status, map[string]string{"error": msg})
}

// serveBrowserFiles serves the browser's test page and what it loads: the
// stock client's browser bundles from test/interop/node_modules, and the
// test modules.
func (a *matrixApp) serveBrowserFiles(mux *http.ServeMux) {
	dir := filepath.Join(a.root, "test", "interop")
	bundle := func(pkg, name string) string {
		return filepath.Join(dir, "node_modules", "@microsoft", pkg, "dist", "browser", name)
	}
	serve := func(w http.ResponseWriter, r *http.Request, file string) {
		if strings.HasSuffix(file, "js") {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFile(w, r, file)
	}
	files := map[string]string{
		"GET /browser/{$}":                     filepath.Join(dir, "matrix", "page.html"),
		"GET /interop/common.mjs":              filepath.Join(dir, "common.mjs"),
		"GET /lib/signalr.js":                  bundle("signalr", "signalr.js"),
		"GET /lib/signalr-protocol-msgpack.js": bundle("signalr-protocol-msgpack", "signalr-protocol-msgpack.js"),
	}
	for pattern, file := range files {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { serve(w, r, file) })
	}
	mux.HandleFunc("GET /interop/matrix/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if !strings.HasSuffix(name, ".mjs") || name != filepath.Base(name) {
			http.NotFound(w, r)
			return
		}
		serve(w, r, filepath.Join(dir, "matrix", name))
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

// chromium finds the browser the browser matrix drives, or fails the test
// saying how to install it.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if errors.Is(err, exec.ErrNotFound) {
		t.Fatal("chromium is not on PATH: install Debian's chromium package (apt-get install chromium); .ci/run does")
	} else if err != nil {
		t.Fatal(err)
	}
	return path
}
