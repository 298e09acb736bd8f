package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/switchboard-gw/switchboard/negotiate"
)

// azureFunction is an upstream written from Azure SignalR's documented
// upstream format alone (learn.microsoft.com/azure/azure-signalr/concept-upstream
// and the Azure Functions SignalR trigger), with nothing of this
// repository's SDK: it checks X-ASRS-Signature against the access keys it
// was given, reads the X-ASRS-* headers and Azure's bodies, and answers as
// a Functions app does (a completion in the client's protocol).
type azureFunction struct {
	t *testing.T

	mu   sync.Mutex // guards the fields below
	keys []string   // the access keys it accepts, as in an app's connection strings
	reqs []azureRequest
}

// azureRequest is one request as the function saw it.
type azureRequest struct {
	Path        string
	Header      http.Header
	Body        []byte
	Query       url.Values // parsed from X-ASRS-Client-Query
	Invocation  []any      // a message's hub protocol invocation, decoded
	Signatures  []string   // the entries of X-ASRS-Signature
	ValidWithKs []bool     // per accepted key: whether an entry matched it
}

func (f *azureFunction) setKeys(keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = keys
}

func (f *azureFunction) requests() []azureRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// signatureValid is the Functions trigger's check: split the header on ',',
// and accept when any entry equals "sha256=" + hex HMAC-SHA256 of the
// connection id keyed with one of the access keys, ignoring case.
func signatureValid(header, connID, key string) bool {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(connID))
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	for entry := range strings.SplitSeq(header, ",") {
		if strings.EqualFold(strings.TrimSpace(entry), want) {
			return true
		}
	}
	return false
}

func (f *azureFunction) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := azureRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	q := strings.TrimPrefix(r.Header.Get("X-ASRS-Client-Query"), "?")
	rec.Query, _ = url.ParseQuery(q)
	sig := r.Header.Get("X-ASRS-Signature")
	rec.Signatures = strings.Split(sig, ",")
	f.mu.Lock()
	valid := false
	for _, k := range f.keys {
		ok := signatureValid(sig, r.Header.Get("X-ASRS-Connection-Id"), k)
		rec.ValidWithKs = append(rec.ValidWithKs, ok)
		valid = valid || ok
	}
	f.mu.Unlock()
	category, event := r.Header.Get("X-ASRS-Category"), r.Header.Get("X-ASRS-Event")
	if category == "messages" {
		var err error
		if rec.Invocation, err = decodeInvocation(r.Header.Get("Content-Type"), body); err != nil {
			f.t.Errorf("%s: body %q: %v", r.URL.Path, body, err)
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	f.mu.Unlock()
	if !valid {
		http.Error(w, "signature", http.StatusUnauthorized) // as the Functions trigger answers
		return
	}
	switch {
	case category == "connections" && event == "connect":
		if rec.Query.Get("reject") == "yes" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"not on the list"}`)
			return
		}
		if r.Header.Get("X-ASRS-User-Id") == "" {
			w.WriteHeader(http.StatusNoContent) // an anonymous client stays so
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"groups":["room"]}`)
	case category == "messages" && len(rec.Invocation) > 0:
		id, _ := rec.Invocation[1].(string)
		if id == "" {
			w.WriteHeader(http.StatusOK) // a send: Azure reads nothing back
			return
		}
		var args any = rec.Invocation[3]
		errText := ""
		if event == "fail" {
			errText = "fail on purpose"
		}
		w.Write(encodeCompletion(r.Header.Get("Content-Type"), id, args, errText))
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// decodeInvocation reads a hub protocol invocation as Azure forwards it,
// into [type, invocationId or "", target, arguments]: JSON for
// application/json, a MessagePack array ([1, headers, id, target, args])
// for application/x-msgpack.
func decodeInvocation(contentType string, body []byte) ([]any, error) {
	switch contentType {
	case "application/json":
		var m struct {
			Type         int    `json:"type"`
			InvocationID string `json:"invocationId"`
			Target       string `json:"target"`
			Arguments    []any  `json:"arguments"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		return []any{m.Type, m.InvocationID, m.Target, m.Arguments}, nil
	case "application/x-msgpack":
		var arr []any
		if err := msgpack.Unmarshal(body, &arr); err != nil {
			return nil, err
		}
		if len(arr) < 5 {
			return nil, fmt.Errorf("invocation array of %d items", len(arr))
		}
		id, _ := arr[2].(string)
		target, _ := arr[3].(string)
		args, _ := arr[4].([]any)
		return []any{fmt.Sprint(arr[0]), id, target, args}, nil
	}
	return nil, fmt.Errorf("unexpected Content-Type %q", contentType)
}

// encodeCompletion is what a Functions app answers an invocation: a
// completion framed in the client's protocol (JSON with its record
// separator, MessagePack with its length prefix).
func encodeCompletion(contentType, id string, result any, errText string) []byte {
	if contentType == "application/x-msgpack" {
		msg := []any{3, map[string]string{}, id, 3, result}
		if errText != "" {
			msg = []any{3, map[string]string{}, id, 1, errText}
		}
		b, err := msgpack.Marshal(msg)
		if err != nil {
			panic(err)
		}
		var prefix []byte
		for n := len(b); ; n >>= 7 {
			if n < 0x80 {
				prefix = append(prefix, byte(n))
				break
			}
			prefix = append(prefix, byte(n)|0x80)
		}
		return append(prefix, b...)
	}
	m := map[string]any{"type": 3, "invocationId": id}
	if errText != "" {
		m["error"] = errText
	} else {
		m["result"] = result
	}
	b, _ := json.Marshal(m)
	return append(b, 0x1e)
}

// TestInteropAzureProfile registers an azure-signalr upstream and drives it
// with stock @microsoft/signalr clients over JSON and MessagePack
// (test/interop/azure/azure-profile.mjs): connects accepted and rejected,
// invocations answered with a result and with an error, a send, and the
// connection events; the function checks every request's signature with
// the access key. Then the keys rotate: the signature changes, and a
// function that knows only the old key or only the new one accepts it.
func TestInteropAzureProfile(t *testing.T) {
	root := repoRoot(t)
	requireNodeModules(t, filepath.Join(root, "test", "interop"), "npm ci --prefix test/interop")
	g := startNode(t)
	g.createHub("azchat", true)
	fn := &azureFunction{t: t}
	fn.setKeys(g.cs.AccessKey)
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	g.admin(http.MethodPost, "/admin/hubs/azchat/upstreams", map[string]any{
		"name": "azure-fn", "urlTemplate": srv.URL + "/{hub}/api/{category}/{event}", "timeout": "5s",
		"profile": "azure-signalr", "eventPattern": "connect,connected,disconnected,echo,fail,shout",
	}, http.StatusCreated)

	resp, err := negotiate.NewResponse(g.cs, "azchat", "ann", negotiate.WithClaims(map[string]any{"role": []string{"admin", "dev"}}))
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, root, []string{"GATEWAY_URL=" + g.url, "ANN_TOKEN=" + resp.AccessToken},
		"--test", "--test-reporter=spec", "test/interop/azure/azure-profile.mjs")

	for _, proto := range []string{"json", "messagepack"} {
		contentType := map[string]string{"json": "application/json", "messagepack": "application/x-msgpack"}[proto]
		t.Run(proto, func(t *testing.T) {
			user := waitCase(t, fn, proto+"-user", "disconnected")
			events := eventsOf(user)
			if want := []string{"connect", "connected", "echo", "fail", "shout", "disconnected"}; !sameNames(events, want) {
				t.Errorf("user's events %v, want %v", events, want)
			}
			for _, r := range user {
				h := r.Header
				cat, ev := h.Get("X-ASRS-Category"), h.Get("X-ASRS-Event")
				if r.Path != "/azchat/api/"+cat+"/"+ev || h.Get("X-ASRS-Hub") != "azchat" || h.Get("X-ASRS-User-Id") != "ann" ||
					h.Get("X-ASRS-Connection-Id") == "" || !slices.Contains(r.ValidWithKs, true) || len(r.Signatures) != 1 {
					t.Errorf("%s: path %s, headers %v, signature valid %v", ev, r.Path, h, r.ValidWithKs)
				}
				if claims := h.Get("X-ASRS-User-Claims"); !strings.Contains(claims, "role: admin, role: dev") {
					t.Errorf("%s: X-ASRS-User-Claims %q, want the role claim's two values", ev, claims)
				}
				if q := h.Get("X-ASRS-Client-Query"); !strings.HasPrefix(q, "?") || r.Query.Get("hub") != "azchat" || r.Query.Has("id") || r.Query.Has("access_token") {
					t.Errorf("%s: X-ASRS-Client-Query %q: want the connect query without the connection and access tokens", ev, q)
				}
				want := "application/json"
				if cat == "messages" {
					want = contentType
				}
				if got := h.Get("Content-Type"); got != want {
					t.Errorf("%s: Content-Type %q, want %q", ev, got, want)
				}
				switch ev {
				case "connected":
					if string(r.Body) != `{"type":10}` {
						t.Errorf("connected body %s", r.Body)
					}
				case "disconnected":
					if string(r.Body) != `{"type":11}` {
						t.Errorf("disconnected body %s, want a clean close", r.Body)
					}
				case "connect":
					var b struct {
						Claims map[string][]string `json:"claims"`
						Query  map[string][]string `json:"query"`
					}
					if err := json.Unmarshal(r.Body, &b); err != nil || !reflect.DeepEqual(b.Claims["role"], []string{"admin", "dev"}) || b.Query["case"][0] != proto+"-user" {
						t.Errorf("connect body %s: %v", r.Body, err)
					}
				case "echo":
					if fmt.Sprint(r.Invocation[0]) != "1" || r.Invocation[1] == "" || r.Invocation[2] != "echo" || fmt.Sprint(r.Invocation[3]) != "[hi 42]" {
						t.Errorf("echo invocation %v", r.Invocation)
					}
				case "shout":
					if r.Invocation[1] != "" || r.Invocation[2] != "shout" || fmt.Sprint(r.Invocation[3]) != "[loud]" {
						t.Errorf("shout invocation %v: want a send, without an invocation id", r.Invocation)
					}
				}
			}
			rejected := requestsOfCase(fn, proto+"-reject")
			if got := eventsOf(rejected); !slices.Equal(got, []string{"connect"}) {
				t.Errorf("rejected client's events %v, want connect only", got)
			}
			anon := waitCase(t, fn, proto+"-anon", "disconnected")
			if got := eventsOf(anon); !sameNames(got, []string{"connect", "connected", "echo", "disconnected"}) {
				t.Errorf("anonymous client's events %v", got)
			}
			for _, r := range anon {
				if _, ok := r.Header["X-Asrs-User-Id"]; ok {
					t.Errorf("%s of an anonymous client carries X-ASRS-User-Id %q", r.Header.Get("X-ASRS-Event"), r.Header.Get("X-ASRS-User-Id"))
				}
			}
		})
	}

	// Key rotation: the new key signs first, the old one second, so a
	// function still configured with the old connection string and one
	// already moved to the new one both accept the requests.
	oldKey := g.cs.AccessKey
	var rotated struct {
		ConnectionString string `json:"connectionString"`
	}
	if err := json.Unmarshal(g.admin(http.MethodPost, "/admin/keys/:rotate", nil, http.StatusOK), &rotated); err != nil {
		t.Fatal(err)
	}
	cs, err := negotiate.ParseConnectionString(rotated.ConnectionString)
	if err != nil {
		t.Fatal(err)
	}
	newKey := cs.AccessKey
	fn.setKeys(oldKey, newKey)
	// The node applies the rotation when its configuration watch reports it;
	// each round connects a client and looks at its connected event.
	deadline := time.Now().Add(waitFor)
	for round := 0; ; round++ {
		c := g.dial("azchat", "", nil)
		r := waitConn(t, fn, c.ConnectionID(), "connected")
		c.Close()
		if len(r.Signatures) == 2 {
			if !r.ValidWithKs[0] || !r.ValidWithKs[1] {
				t.Errorf("after rotation, valid with old key %v, with new key %v; want both", r.ValidWithKs[0], r.ValidWithKs[1])
			}
			if !signatureValid(r.Signatures[0], r.Header.Get("X-ASRS-Connection-Id"), newKey) ||
				!signatureValid(r.Signatures[1], r.Header.Get("X-ASRS-Connection-Id"), oldKey) {
				t.Errorf("signature %v: want the new key's entry first, then the old key's", r.Signatures)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request signed with two keys within %s of the rotation (%d rounds)", waitFor, round)
		}
	}
}

// requestsOfCase are the function's requests of the client whose connect
// query had case=name.
func requestsOfCase(fn *azureFunction, name string) []azureRequest {
	var out []azureRequest
	for _, r := range fn.requests() {
		if r.Query.Get("case") == name {
			out = append(out, r)
		}
	}
	return out
}

// waitCase waits (bounded) until the client of case name has sent event
// and returns its requests.
func waitCase(t *testing.T, fn *azureFunction, name, event string) []azureRequest {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		rs := requestsOfCase(fn, name)
		if slices.Contains(eventsOf(rs), event) {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("case %s: no %s request within %s; got %v", name, event, waitFor, eventsOf(rs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitConn waits (bounded) for event of connection id.
func waitConn(t *testing.T, fn *azureFunction, id, event string) azureRequest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for {
		for _, r := range fn.requests() {
			if r.Header.Get("X-ASRS-Connection-Id") == id && r.Header.Get("X-ASRS-Event") == event {
				return r
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s request of connection %s within %s", event, id, waitFor)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func eventsOf(rs []azureRequest) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Header.Get("X-ASRS-Event"))
	}
	return out
}

// sameNames reports whether a and b hold the same names, however often.
func sameNames(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
