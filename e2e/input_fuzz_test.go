package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/input"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// FuzzClientInput drives arbitrary invocation targets, user ids (in the
// token, or set by the connect reply), group names (joined by the connect
// reply, then used in reply actions) and arguments through a real node to a
// real upstream that checks every request it gets. For every input, either
// the upstream receives a well-formed, correctly signed request inside its
// registered path prefix, or the client gets a clear error, and valid input
// always gets through. Across the whole sequence no breaker ever counts a
// failure, though one failure would open it. The seeds run as a normal test.
func FuzzClientInput(f *testing.F) {
	seeds := []struct {
		target, user, group, args string
		viaReply                  bool
	}{
		{"SendMessage", "alice", "room", `["hi"]`, false},
		{"SendMessage", "alice", "room", `["hi"]`, true},
		{"..", "bob", "g", `[]`, false},
		{".", "bob", "g", `[1]`, true},
		{"../../admin", "carol", "g", `[]`, false},
		{`..\..\admin`, "carol", "g", `[]`, false},
		{"%2e%2e", "é✓ tenant/dave", "room 1", `[null]`, false},
		{"a\x00b", "erin", "g", `[]`, false},
		{"x\r\nInjected: 1", "frank", "g", `[]`, false},
		{"send", "u\r\nX-Admin: 1", "g", `[]`, false},
		{"send", "u\r\nX-Admin: 1", "g", `[]`, true},
		{"send", "gina", "g\x00", `[]`, false},
		{"send", strings.Repeat("u", 2000), "g", `[]`, false},
		{"send", strings.Repeat("u", 100<<10), "g", `[]`, true},
		{"send", "hank", strings.Repeat("g", 1025), `[]`, false},
		{"send", "hank", "   ", `[]`, false},
		{strings.Repeat("t", 257), "ivy", "g", `[]`, false},
		{" ", "ivy", "g", `[]`, false},
		{"", "", "", `not json`, false},
		{"Send It", "", "lobby", `[{"a":[1,2]},"\u0000"]`, true},
		{"\u0085", "\xff\xfe", "\u2028", `[]`, false},
	}
	for _, s := range seeds {
		f.Add(s.target, s.user, s.group, s.args, s.viaReply)
	}
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, target, user, group, args string, viaReply bool) {
		rig.try(t, target, user, group, args, viaReply)
	})
}

// fuzzRig is one node with hub "fz" and one checking upstream, shared by
// every input so that the breaker sees the whole sequence.
type fuzzRig struct {
	url, adminKey string
	key           negotiate.AccessKey
	secret        string

	mu       sync.Mutex           // guards the fields below
	problems []string             // what the upstream found wrong since the last input
	groups   map[string]string    // connection id → group its connect joined
	shapes   map[string]connShape // connect query "n" → what the connect reply sets
	next     int
}

// connShape is what the upstream's connect reply sets: a user id (when
// set) and a group (when not empty). The client passes a key to it in the
// connect query, so values of any size and content reach the reply.
type connShape struct {
	user  *string
	group string
}

func newFuzzRig(f *testing.F) *fuzzRig {
	cfg := node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(f.TempDir(), "switchboard.db"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Delivery: delivery.DispatcherConfig{Breaker: delivery.BreakerConfig{ConsecutiveFailures: 1, MinRequests: 1}}}
	n, err := node.Start(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = n.Close() })
	cs, err := n.ConnectionString()
	if err != nil {
		f.Fatal(err)
	}
	r := &fuzzRig{url: "http://" + n.Addr().String(), adminKey: n.AdminKey(), key: cs.Key(), groups: map[string]string{}, shapes: map[string]connShape{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	srv.Config.MaxHeaderBytes = 16 << 10 // as Node's HTTP server
	srv.Start()
	f.Cleanup(srv.Close)

	admin := func(method, path string, body any, want int) []byte {
		status, data, err := tryDo(method, r.url+path, r.adminKey, body)
		if err != nil || status != want {
			f.Fatalf("%s %s: %d %s %v", method, path, status, data, err)
		}
		return data
	}
	admin(http.MethodPost, "/admin/hubs", map[string]any{"name": "fz", "allowAnonymous": true}, http.StatusCreated)
	var up struct {
		Secrets []string `json:"secrets"`
	}
	data := admin(http.MethodPost, "/admin/hubs/fz/upstreams", map[string]any{"name": "fn", "urlTemplate": srv.URL + "/hooks/{hub}/{category}/{event}",
		"events": []string{"connect", "connected", "disconnected", "message:*"}, "timeout": "10s", "skipValidation": true}, http.StatusCreated)
	if err := json.Unmarshal(data, &up); err != nil || len(up.Secrets) != 1 {
		f.Fatalf("upstream: %s %v", data, err)
	}
	r.secret = up.Secrets[0]
	return r
}

func (r *fuzzRig) problem(format string, args ...any) {
	r.mu.Lock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// serve is the upstream: it checks each request as a strict receiver would
// and answers the way an app that echoes its clients' input does.
func (r *fuzzRig) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if !validSignature(r.secret, req.Header, body) {
		r.problem("bad signature on %s", req.URL.Path)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	// Inside the prefix, with exactly the template's segments, decoded as
	// a normalising receiver would see them.
	segs := strings.Split(strings.ReplaceAll(req.URL.Path, `\`, "/"), "/")
	if len(segs) != 5 || segs[1] != "hooks" || segs[2] != "fz" {
		r.problem("request outside /hooks/fz/{category}/{event}: %q", req.URL.Path)
	}
	for _, s := range segs {
		if s == "." || s == ".." {
			r.problem("dot segment in %q", req.URL.Path)
		}
	}
	for name, vs := range req.Header {
		for _, v := range vs {
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e {
					r.problem("header %s holds byte %#x", name, v[i])
					break
				}
			}
		}
	}
	var ev upstream.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.Hub != "fz" || ev.ConnectionID == "" {
		r.problem("body is not an event of hub fz: %.100s", body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch ev.Event {
	case upstream.EventConnect:
		out := map[string]any{}
		r.mu.Lock()
		shape := r.shapes[strings.Join(ev.Query["n"], "")]
		if shape.group != "" {
			r.groups[ev.ConnectionID] = shape.group
		}
		r.mu.Unlock()
		if shape.user != nil {
			out["userId"] = *shape.user
		}
		if shape.group != "" {
			out["groups"] = []string{shape.group}
		}
		reply(out)
	case upstream.EventMessage:
		r.mu.Lock()
		group := r.groups[ev.ConnectionID]
		r.mu.Unlock()
		acts := []map[string]any{{"action": "broadcast", "target": ev.Target, "arguments": ev.Arguments, "excluded": []string{ev.ConnectionID}}}
		if group != "" {
			acts = append(acts, map[string]any{"action": "sendToGroup", "group": group, "target": ev.Target, "arguments": ev.Arguments})
		}
		if ev.User() != "" {
			acts = append(acts, map[string]any{"action": "addUserToGroup", "user": ev.User(), "group": "fz-users", "ttl": 60})
		}
		reply(map[string]any{"result": "ok", "actions": acts})
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// viaJSON is s as it arrives after a trip through encoding/json, which
// replaces invalid UTF-8: the value the gateway sees.
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// clearPhrases are the ways a client is told its own input was refused.
var clearPhrases = []string{"user id", "group name", "target", "token", "claim", "query",
	"exceeds the hub's size limit", "not called", "sent an invalid reply", "no upstream"}

// clearError fails the test unless err tells the client what was wrong with
// its input, and is no upstream failure.
func clearError(t *testing.T, what string, err error) {
	t.Helper()
	msg := err.Error()
	for _, bad := range []string{"circuit", "unreachable", "timed out", "misconfigured", "internal error", "answered 5"} {
		if strings.Contains(msg, bad) {
			t.Fatalf("%s: the client was told %q: an upstream failure, not its own error", what, msg)
		}
	}
	for _, p := range clearPhrases {
		if strings.Contains(msg, p) {
			return
		}
	}
	t.Fatalf("%s: the client was told %q, which does not say what was wrong", what, msg)
}

func (r *fuzzRig) try(t *testing.T, target, user, group, args string, viaReply bool) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	target, user, group = viaJSON(target), viaJSON(user), viaJSON(group)
	claims := jwt.MapClaims{"aud": negotiate.ClientURL(r.url, "fz"), "exp": time.Now().Add(time.Hour).Unix()}
	shape := connShape{group: group}
	if user != "" {
		if viaReply {
			shape.user = &user
		} else {
			claims["nameid"] = user
		}
	}
	r.mu.Lock()
	r.next++
	key := strconv.Itoa(r.next)
	r.shapes[key] = shape
	r.mu.Unlock()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = r.key.ID
	token, err := tok.SignedString([]byte(r.key.Secret))
	if err != nil {
		t.Fatal(err)
	}
	validUser := user == "" || input.UserID(user) == nil
	validGroup := group == "" || input.Group(group) == nil
	fits := len(token) <= negotiate.MaxTokenSize

	c, err := client.Dial(ctx, r.url+"/client/?hub=fz&n="+key, &client.Options{
		AccessToken: func(context.Context) (string, error) { return token, nil }})
	switch {
	case err != nil && validUser && validGroup && fits:
		t.Fatalf("valid user %q and group %q refused: %v", user, group, err)
	case err != nil:
		clearError(t, "connect", err)
	case !validUser || !validGroup:
		c.Close()
		t.Fatalf("connected with user %s and group %s, which break the input rules", input.Quote(user), input.Quote(group))
	default:
		r.invoke(ctx, t, c, target, args)
		c.Close()
	}
	r.check(t)
}

func (r *fuzzRig) invoke(ctx context.Context, t *testing.T, c *client.Conn, target, args string) {
	var argv []any
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		argv = []any{args}
	}
	frame, _ := json.Marshal(map[string]any{"type": 1, "invocationId": "0", "target": target, "arguments": argv})
	res, err := c.Invoke(ctx, target, argv...)
	switch {
	case err != nil && input.Target(target) == nil && len(frame) < 30<<10:
		t.Fatalf("valid invocation of %s failed: %v", input.Quote(target), err)
	case err != nil && input.Target(target) != nil && target != "" && !strings.Contains(err.Error(), "invalid invocation: target"):
		// The gateway refuses a bad target where it enters; an empty one
		// the protocol parser refuses first.
		t.Fatalf("invoke of the invalid target %s failed with %v, want the gateway's refusal", input.Quote(target), err)
	case err != nil:
		clearError(t, "invoke", err)
	case string(res) != `"ok"`:
		t.Fatalf("invoke %s: result %s, want \"ok\"", input.Quote(target), res)
	}
	// An invalid target is refused by the gateway (above); only a valid one
	// succeeds.
	if err == nil && input.Target(target) != nil {
		t.Fatalf("invoke %s succeeded, though the upstream's reply repeats the target in its actions", input.Quote(target))
	}
}

// check fails the test on anything the upstream found and on any failure
// the breaker counted.
func (r *fuzzRig) check(t *testing.T) {
	r.mu.Lock()
	problems := r.problems
	r.problems = nil
	r.mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the upstream got malformed requests: %q", problems)
	}
	status, data, err := tryDo(http.MethodGet, r.url+"/admin/status", r.adminKey, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("status: %d %s %v", status, data, err)
	}
	var st struct {
		Upstreams []delivery.UpstreamStatus `json:"upstreams"`
	}
	if err := json.Unmarshal(data, &st); err != nil || len(st.Upstreams) != 1 {
		t.Fatalf("status %s: %v", data, err)
	}
	if b := st.Upstreams[0].Breaker; b.State != delivery.BreakerClosed || b.ConsecutiveFailures != 0 {
		t.Fatalf("breaker %+v: client input counted against the upstream", b)
	}
}
