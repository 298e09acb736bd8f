package delivery

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/upstream"
)

// newPickyHook is a hook whose server refuses more than 16 KiB of request
// headers with 431, as Node's does.
func newPickyHook(t *testing.T) *hook {
	h := &hook{t: t}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(h.serve))
	h.srv.Config.MaxHeaderBytes = 16 << 10
	h.srv.Start()
	t.Cleanup(h.srv.Close)
	return h
}

func withUser(ev *upstream.Event, user string) *upstream.Event {
	ev.UserID = &user
	return ev
}

// TestCallerInputNeverCountsAgainstBreaker: events whose own values cannot
// become a safe request are refused before anything is sent, tell the
// caller why, and leave a breaker that opens on one failure closed; values
// that only need encoding are delivered, inside the template's path.
func TestCallerInputNeverCountsAgainstBreaker(t *testing.T) {
	t.Parallel()
	h := newPickyHook(t)
	d := startDispatcher(t, DispatcherConfig{Breaker: BreakerConfig{ConsecutiveFailures: 1, MinRequests: 1}})
	tg := h.target("chat", "fn")
	tg.URLTemplate = h.srv.URL + "/hooks/{hub}/{category}/{event}"
	d.SetTargets([]Target{tg})
	ctx := context.Background()

	refused := []struct {
		name string
		ev   *upstream.Event
		want string
	}{
		{"dot dot target", message("c1", ".."), `dot segment ".."`},
		{"dot target", message("c1", "."), `dot segment "."`},
		{"climbing target", message("c1", "../../admin"), "path separator"},
		{"backslash target", message("c1", `..\x`), "path separator"},
		{"user id too large for headers", withUser(message("c1", "send"), strings.Repeat("u", 20<<10)), "the limit is 8192"},
		{"connect with a huge user id", withUser(&upstream.Event{Hub: "chat", ConnectionID: "c1", Event: upstream.EventConnect}, strings.Repeat("é", 5<<10)), "the limit is 8192"},
	}
	for _, tt := range refused {
		_, err := d.Call(ctx, tt.ev)
		var ce interface{ ClientMessage() string }
		if !errors.Is(err, ErrRefused) || !errors.As(err, &ce) || !strings.Contains(ce.ClientMessage(), tt.want) {
			t.Errorf("%s: err = %v, want ErrRefused telling the client %q", tt.name, err, tt.want)
		}
		if errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("%s: the breaker opened", tt.name)
		}
	}
	delivered := []*upstream.Event{
		withUser(message("c1", "Send It"), "bob\r\nX-Admin: 1"),
		withUser(message("c1", "a\x00b"), "\x7f\u0085"),
		message("c1", "%2e%2e"),
		message("c1", "..."),
	}
	for _, ev := range delivered {
		if _, err := d.Call(ctx, ev); err != nil {
			t.Errorf("target %q, user %v: %v", ev.Target, ev.UserID, err)
		}
	}
	if st := d.Status().Upstreams[0].Breaker; st.State != BreakerClosed || st.ConsecutiveFailures != 0 {
		t.Fatalf("breaker = %+v, want closed with no failures", st)
	}
	hits := h.all()
	if len(hits) != len(delivered) {
		t.Fatalf("upstream got %d requests, want %d (only the deliverable ones)", len(hits), len(delivered))
	}
	for i, x := range hits {
		if x.ev.Target != delivered[i].Target || (delivered[i].UserID != nil && x.ev.User() != *delivered[i].UserID) {
			t.Errorf("request %d carried target %q user %q, want %q %v", i, x.ev.Target, x.ev.User(), delivered[i].Target, delivered[i].UserID)
		}
	}
	log, _ := d.DeliveryLog("chat", "fn")
	if len(log) != len(refused)+len(delivered) || !strings.Contains(log[len(log)-1].Error, "not called") {
		t.Errorf("delivery log = %+v, want every refusal too", log)
	}
}

// TestRequestsStayInsidePrefix: what the upstream receives, decoded as a
// receiver would, never leaves the template's path.
func TestRequestsStayInsidePrefix(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	d := startDispatcher(t, DispatcherConfig{})
	tg := h.target("chat", "fn")
	tg.URLTemplate = h.srv.URL + "/hooks/{event}"
	d.SetTargets([]Target{tg})
	for _, target := range []string{"..", ".", "%2e%2e", "a/../..", "...", "x"} {
		_, _ = d.Call(context.Background(), message("c1", target))
	}
	srvPaths := h.paths()
	for _, p := range srvPaths {
		segs := strings.Split(p, "/")
		if !strings.HasPrefix(p, "/hooks/") || len(segs) != 3 || segs[2] == "." || segs[2] == ".." {
			t.Errorf("upstream got path %q, outside /hooks/ or with a dot segment", p)
		}
	}
	if len(srvPaths) != 3 {
		t.Errorf("upstream got paths %q, want 3: %%2e%%2e, ... and x", srvPaths)
	}
}

// TestCloudEventsHeadersPercentEncoded: ce-* attributes are percent-encoded
// as the CloudEvents HTTP binding requires, so any user id or target makes a
// valid header; the body carries them as they are.
func TestCloudEventsHeadersPercentEncoded(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	d := startDispatcher(t, DispatcherConfig{})
	d.SetTargets([]Target{h.target("chat", "fn")})
	ev := withUser(message("c1", "Send It ✓"), "Bob \"B\" 100%\r\n")
	if _, err := d.Call(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	x := h.waitHits(1)[0]
	for name, want := range map[string]string{
		"ce-userid":    "Bob%20%22B%22%20100%25%0D%0A",
		"ce-eventname": "Send%20It%20%E2%9C%93",
		"ce-hub":       "chat",
		"ce-source":    "/hubs/chat/connections/c1",
	} {
		if got := x.hdr.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if x.ev.User() != *ev.UserID || x.ev.Target != ev.Target {
		t.Errorf("body carries user %q target %q, want them unencoded", x.ev.User(), x.ev.Target)
	}
}

// TestTooLargeNotRetried: an upstream that refuses a notification's size
// (413, 414, 431) is not asked again: the same event would be refused
// again, for the outbox's whole TTL.
func TestTooLargeNotRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{413, 414, 431} {
		h := newHook(t)
		h.setRespond(func(int, hit) (int, http.Header, string) { return status, nil, "" })
		d := startDispatcher(t, fastRetry)
		d.SetTargets([]Target{h.target("chat", "fn")})
		d.Notify(context.Background(), &upstream.Event{Hub: "chat", ConnectionID: "c", Event: upstream.EventConnected})
		testutil.Eventually(t, waitFor, "outbox drained", func() bool { return d.Status().Outbox.Depth == 0 })
		if n := len(h.all()); n != 1 {
			t.Errorf("%d: upstream asked %d times, want once", status, n)
		}
	}
}

// TestOversizedNotificationDropped: a notification whose headers would be
// too large (a user id from before the input rules, replayed from the
// outbox) is dropped at once instead of waiting a day on 431s.
func TestOversizedNotificationDropped(t *testing.T) {
	t.Parallel()
	h := newPickyHook(t)
	d := startDispatcher(t, fastRetry)
	d.SetTargets([]Target{h.target("chat", "fn")})
	d.Notify(context.Background(), withUser(&upstream.Event{Hub: "chat", ConnectionID: "big", Event: upstream.EventConnected}, strings.Repeat("u", 100<<10)))
	d.Notify(context.Background(), withUser(&upstream.Event{Hub: "chat", ConnectionID: "ok", Event: upstream.EventConnected}, "alice"))
	testutil.Eventually(t, waitFor, "outbox drained", func() bool { return d.Status().Outbox.Depth == 0 })
	hits := h.all()
	if len(hits) != 1 || hits[0].ev.ConnectionID != "ok" {
		t.Errorf("upstream got %d requests (%+v), want only alice's", len(hits), hits)
	}
	if st := d.Status().Upstreams[0].Breaker; st.State != BreakerClosed {
		t.Errorf("breaker = %+v", st)
	}
}

func TestIsJSONType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                true,
		"application/json; charset=utf-8": true,
		"Application/JSON; Charset=UTF-8": true,
		"application/json;charset=utf-8":  true,
		"application/cloudevents+json":    true,
		"application/problem+json; x=1":   true,
		"":                                false,
		"text/plain":                      false,
		"application/jsonp":               false,
		"application/json; charset=\"utf": false,
	} {
		if got := isJSONType(ct); got != want {
			t.Errorf("isJSONType(%q) = %v, want %v", ct, got, want)
		}
	}
}
