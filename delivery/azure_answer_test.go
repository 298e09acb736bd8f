package delivery

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/upstream"
)

// TestAzureAnswers: how a Call reads an azure-signalr upstream's answers
// to connect and to invocations.
func TestAzureAnswers(t *testing.T) {
	t.Parallel()
	type answer struct {
		status int
		body   string
	}
	var mu sync.Mutex // guards next
	var next answer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		mu.Lock()
		a := next
		mu.Unlock()
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	rules, err := ParseAzureRules("*", "*", "connect,echo")
	if err != nil {
		t.Fatal(err)
	}
	d := startDispatcher(t, DispatcherConfig{Breaker: BreakerConfig{ConsecutiveFailures: 1000}})
	d.SetTargets([]Target{{Hub: "chat", Name: "fn", URLTemplate: srv.URL + "/{event}", Timeout: 2 * time.Second,
		Azure: &AzureUpstream{Rules: rules, AccessKeys: []string{"k"}}}})

	connect := func() *upstream.Event {
		return &upstream.Event{Hub: "chat", ConnectionID: "c", Event: upstream.EventConnect, Subprotocols: []string{"json.v1"}}
	}
	invoke := func(id string) *upstream.Event {
		ev := &upstream.Event{Hub: "chat", ConnectionID: "c", Event: upstream.EventMessage, Target: "echo", Arguments: []byte(`["x"]`)}
		if id != "" {
			ev.InvocationID = &id
		}
		return ev
	}
	tests := []struct {
		name    string
		ev      *upstream.Event
		answer  answer
		user    string // wanted reply user id
		groups  string // wanted groups, joined by ","
		reject  string // wanted reply.Error
		result  string // wanted reply.Result
		errText string // wanted error text part
		nilRep  bool   // wanted nil reply and no error
	}{
		{name: "connect accepted and shaped", ev: connect(), answer: answer{200, `{"userId":"ann","groups":["a","b"],"roles":["x"],"subprotocol":"json.v1"}`}, user: "ann", groups: "a,b"},
		{name: "connect accepted as is", ev: connect(), answer: answer{204, ""}, nilRep: true},
		{name: "connect rejected with a reason", ev: connect(), answer: answer{401, `{"error":"sign in"}`}, reject: "sign in"},
		{name: "connect rejected without one", ev: connect(), answer: answer{400, `nope`}, reject: `connection rejected by upstream "fn" (400)`},
		{name: "connect throttled is a failure", ev: connect(), answer: answer{429, ``}, errText: "429"},
		{name: "connect failing upstream", ev: connect(), answer: answer{500, ``}, errText: "500"},
		{name: "connect with a subprotocol not offered", ev: connect(), answer: answer{200, `{"subprotocol":"mqtt"}`}, errText: "not one the client offered"},
		{name: "connect with a bad user id", ev: connect(), answer: answer{200, "{\"userId\":\"a\\u0000b\"}"}, errText: "invalid connect answer"},
		{name: "invoke answered", ev: invoke("3"), answer: answer{200, "{\"type\":3,\"invocationId\":\"3\",\"result\":[1,2]}\x1e"}, result: "[1,2]"},
		{name: "invoke answered empty", ev: invoke("3"), answer: answer{200, ""}, nilRep: true},
		{name: "invoke answered garbage", ev: invoke("3"), answer: answer{200, "<html>"}, errText: "invalid completion"},
		{name: "invoke failed", ev: invoke("3"), answer: answer{404, "not here"}, errText: "404"},
		{name: "send ignores the body", ev: invoke(""), answer: answer{200, "<html>"}, nilRep: true},
	}
	for _, tt := range tests { // one at a time: they share the server's answer
		mu.Lock()
		next = tt.answer
		mu.Unlock()
		r, err := d.Call(context.Background(), tt.ev)
		switch {
		case tt.errText != "":
			if err == nil || !strings.Contains(err.Error(), tt.errText) || !errors.Is(err, ErrUpstream) {
				t.Errorf("%s: got %+v, %v; want an error with %q", tt.name, r, err, tt.errText)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.nilRep:
			if r != nil {
				t.Errorf("%s: reply %+v, want none", tt.name, r)
			}
		case r == nil:
			t.Errorf("%s: no reply", tt.name)
		case r.Error != tt.reject || string(r.Result) != tt.result || strings.Join(r.Groups, ",") != tt.groups || (tt.user != "" && (r.UserID == nil || *r.UserID != tt.user)):
			t.Errorf("%s: reply %+v (result %s)", tt.name, r, r.Result)
		}
	}
}
