package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// scrape is one /metrics answer parsed by Prometheus' own text parser.
type scrape map[string]*dto.MetricFamily

// scrapeAt GETs url with bearer ("" for none) and parses the answer; a
// status other than 200 fails the test.
func scrapeAt(t *testing.T, url, bearer string) scrape {
	t.Helper()
	status, body := do(t, http.MethodGet, url, bearer, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse %s: %v\n%s", url, err, body)
	}
	return fams
}

// value is the sample of family name whose labels include want, summed
// over the samples that match (a histogram counts its observations); ok
// is false when none matches.
func (s scrape) value(name string, want map[string]string) (float64, bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
	var sum float64
	found := false
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, found
}

// labels are the label names of family name's first sample.
func (s scrape) labels(name string) []string {
	f := s[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return nil
	}
	var out []string
	for _, l := range f.GetMetric()[0].GetLabel() {
		out = append(out, l.GetName())
	}
	sort.Strings(out)
	return out
}

// documentedMetric is one row of the metrics table in docs/operations.md.
type documentedMetric struct {
	name, kind string
	labels     []string
}

var metricRow = regexp.MustCompile("^\\| `(switchboard_[a-z_]+)` \\| (counter|gauge|histogram) \\| ([^|]*) \\|")

// documentedMetrics reads the metrics table of docs/operations.md.
func documentedMetrics(t *testing.T) map[string]documentedMetric {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]documentedMetric{}
	for line := range strings.SplitSeq(string(data), "\n") {
		m := metricRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d := documentedMetric{name: m[1], kind: m[2]}
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" && l != "—" {
				d.labels = append(d.labels, l)
			}
		}
		sort.Strings(d.labels)
		if _, dup := out[d.name]; dup {
			t.Errorf("docs/operations.md lists %s twice", d.name)
		}
		out[d.name] = d
	}
	if len(out) == 0 {
		t.Fatal("docs/operations.md has no metrics table")
	}
	return out
}

// checkDocumented fails the test for each switchboard_ family of s that
// docs/operations.md does not list, or lists with another type or labels.
func checkDocumented(t *testing.T, s scrape, docs map[string]documentedMetric) {
	t.Helper()
	for name, f := range s {
		if !strings.HasPrefix(name, "switchboard_") {
			continue
		}
		d, ok := docs[name]
		if !ok {
			t.Errorf("%s is exposed but not in docs/operations.md", name)
			continue
		}
		if kind := strings.ToLower(f.GetType().String()); kind != d.kind {
			t.Errorf("%s: exposed as %s, documented as %s", name, kind, d.kind)
		}
		if got := s.labels(name); !slices.Equal(got, d.labels) {
			t.Errorf("%s: labels %v, documented %v", name, got, d.labels)
		}
	}
}

// busMetrics are exposed by clustered nodes only.
var busMetrics = []string{"switchboard_bus_messages_received_total", "switchboard_bus_messages_dropped_total"}

// TestMetricsAfterTraffic drives real traffic through a node (Go clients
// on WebSockets with JSON and MessagePack and on Long Polling, invocations
// answered by a real upstream, a failing upstream whose breaker opens, an
// unreachable one holding notifications in the outbox, REST calls good and
// bad, a limit, and a client that never reads until it is closed as a slow
// consumer), scrapes /metrics with Prometheus' parser and checks that every
// metric docs/operations.md lists is there, with its labels and values
// that match the traffic; that nothing undocumented is; and that /metrics
// needs the admin key on the main listener but not on --metrics-listen.
func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	g := startNode(t, func(c *node.Config) {
		c.MetricsListen = "127.0.0.1:0"
		c.Delivery.Breaker.ConsecutiveFailures = 2
		c.Delivery.Breaker.CoolDown = time.Hour // stays open for the scrape
		c.Limits.MaxGroupsPerConnection = 1
	})
	g.createHub("chat", false)
	g.createHub("slow", true)

	rec := newRecorder(t)
	rec.secret = g.addUpstream("chat", "rec", rec.URL()+"/{event}", "connect", "connected", "disconnected", "message:echo")
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event == upstream.EventMessage {
			return http.StatusOK, map[string]any{"result": "ok",
				"actions": []any{map[string]any{"action": "broadcast", "target": "news", "arguments": []string{"echoed"}}}}
		}
		return http.StatusNoContent, nil
	})
	broken := newRawServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"down for maintenance"}`, http.StatusInternalServerError)
	}))
	g.addUpstream("chat", "broken", broken+"/{event}", "message:fail")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there: notifications for it wait in the outbox
	g.addUpstream("chat", "late", "http://"+dead+"/{event}", "disconnected")

	// Three clients on hub chat: WebSockets+JSON, WebSockets+MessagePack,
	// Long Polling+JSON.
	news := newInbox()
	dialWith := func(user, transport, protocol string) *client.Conn {
		tok := g.token("chat", user)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		c, err := client.Dial(ctx, g.url+"/client/?hub=chat", &client.Options{Transport: transport, Protocol: protocol,
			AccessToken: func(context.Context) (string, error) { return tok, nil },
			Handlers:    map[string]func([]json.RawMessage){"news": news.handler()}})
		if err != nil {
			t.Fatalf("dial %s %s: %v", transport, protocol, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice := dialWith("alice", "websockets", "json")
	bob := dialWith("bob", "websockets", "messagepack")
	dialWith("carol", "longpolling", "json")

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for range 3 {
		if _, err := alice.Invoke(ctx, "echo", "hi"); err != nil {
			t.Fatalf("echo: %v", err)
		}
	}
	for i := range 3 { // two failures open the breaker; the third fails at once
		if _, err := alice.Invoke(ctx, "fail"); err == nil {
			t.Fatalf("fail #%d succeeded", i+1)
		}
	}
	for range 2 {
		g.restWant(http.MethodPost, "/api/hubs/chat/:send", map[string]any{"target": "news", "arguments": []string{"from REST"}}, http.StatusAccepted)
	}
	if r := g.restAs("", http.MethodPost, "/api/hubs/chat/:send", msg("no token")); r.status != http.StatusUnauthorized {
		t.Fatalf("REST without a token: %d", r.status)
	}
	g.restWant(http.MethodPut, "/api/hubs/chat/groups/g1/connections/"+alice.ConnectionID(), nil, http.StatusOK)
	g.restWant(http.MethodPut, "/api/hubs/chat/groups/g2/connections/"+alice.ConnectionID(), nil, http.StatusBadRequest) // one group per connection
	// Every client got the 3 echo broadcasts and the 2 REST sends.
	for range 3 * 5 {
		news.next(t)
	}
	bob.Close()

	// A client of hub slow that never reads: broadcasts pile up in its
	// socket, then in its queue, until it is closed as a slow consumer.
	ws := slowReader(t, g)
	defer ws.CloseNow()
	big := msg(strings.Repeat("x", 60<<10))
	for i := 0; g.node.Gateway().SlowConsumers() == 0; i++ {
		if i == 2000 { // 120 MB: far past the 4 MiB queue and any socket buffer
			t.Fatal("the client that never reads was not closed as a slow consumer")
		}
		g.restWant(http.MethodPost, "/api/hubs/slow/:send", big, http.StatusAccepted)
	}
	// The node closes it once its blocked write gives up; a client gone
	// this far behind drops the socket itself, which ends that wait.
	ws.CloseNow()

	var s scrape
	testutil.Eventually(t, waitFor, "closes and the outbox to show in /metrics", func() bool {
		s = scrapeAt(t, g.url+"/metrics", g.adminKey)
		closed, _ := s.value("switchboard_connections_closed_total", map[string]string{"reason": "client_closed", "protocol": "messagepack"})
		slow, _ := s.value("switchboard_connections_closed_total", map[string]string{"hub": "slow", "reason": "slow_consumer"})
		notSent, _ := s.value("switchboard_webhook_calls_total", map[string]string{"upstream": "late", "outcome": "not_sent"})
		ok, _ := s.value("switchboard_webhook_calls_total", map[string]string{"upstream": "rec", "event": "disconnected", "outcome": "ok"})
		return closed == 1 && slow == 1 && notSent >= 1 && ok == 1
	})

	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"switchboard_connections", map[string]string{"hub": "chat", "transport": "websockets", "protocol": "json"}, 1},
		{"switchboard_connections", map[string]string{"hub": "chat", "transport": "websockets", "protocol": "messagepack"}, 0},
		{"switchboard_connections", map[string]string{"hub": "chat", "transport": "longpolling", "protocol": "json"}, 1},
		{"switchboard_connections", map[string]string{"hub": "slow", "transport": "websockets", "protocol": "json"}, 0},
		{"switchboard_connections_opened_total", map[string]string{"hub": "chat"}, 3},
		{"switchboard_connections_opened_total", map[string]string{"hub": "chat", "transport": "longpolling"}, 1},
		{"switchboard_connections_opened_total", map[string]string{"hub": "slow"}, 1},
		{"switchboard_connections_closed_total", map[string]string{"hub": "chat", "transport": "websockets", "protocol": "messagepack", "reason": "client_closed"}, 1},
		{"switchboard_connections_closed_total", map[string]string{"hub": "slow", "reason": "slow_consumer"}, 1},
		{"switchboard_messages_received_total", map[string]string{"hub": "chat"}, 6},
		// 3 echo broadcasts and 2 REST sends to 3 clients (completions are
		// not counted).
		{"switchboard_messages_sent_total", map[string]string{"hub": "chat"}, 3*3 + 2*3},
		{"switchboard_messages_dropped_total", map[string]string{"hub": "chat"}, 0},
		{"switchboard_slow_consumer_closes_total", nil, 1},
		{"switchboard_limits_hit_total", map[string]string{"limit": "groupJoinsRefused"}, 1},
		{"switchboard_limits_hit_total", map[string]string{"limit": "connectRate"}, 0},
		{"switchboard_webhook_calls_total", map[string]string{"hub": "chat", "upstream": "rec", "event": "connect", "outcome": "ok"}, 3},
		{"switchboard_webhook_calls_total", map[string]string{"upstream": "rec", "event": "connected", "outcome": "ok"}, 3},
		{"switchboard_webhook_calls_total", map[string]string{"upstream": "rec", "event": "message", "outcome": "ok"}, 3},
		{"switchboard_webhook_calls_total", map[string]string{"upstream": "broken", "event": "message", "outcome": "error"}, 2},
		{"switchboard_webhook_calls_total", map[string]string{"upstream": "broken", "event": "message", "outcome": "breaker_open"}, 1},
		{"switchboard_webhook_duration_seconds", map[string]string{"upstream": "rec", "event": "message"}, 3},
		{"switchboard_webhook_duration_seconds", map[string]string{"upstream": "broken", "event": "message"}, 2},
		{"switchboard_upstream_breaker_state", map[string]string{"hub": "chat", "upstream": "broken"}, 2},
		{"switchboard_upstream_breaker_state", map[string]string{"hub": "chat", "upstream": "rec"}, 0},
		{"switchboard_upstream_outbox_depth", map[string]string{"upstream": "late"}, 1},
		{"switchboard_upstream_outbox_depth", map[string]string{"upstream": "rec"}, 0},
		{"switchboard_outbox_depth", nil, 1},
		{"switchboard_outbox_limit", nil, 100000},
		{"switchboard_outbox_dropped_total", nil, 0},
		{"switchboard_outbox_expired_total", nil, 0},
		{"switchboard_rest_calls_total", map[string]string{"operation": "POST /api/hubs/{hub}/:send", "status": "401"}, 1},
		{"switchboard_rest_calls_total", map[string]string{"operation": "PUT /api/hubs/{hub}/groups/{group}/connections/{connectionId}", "status": "200"}, 1},
		{"switchboard_rest_calls_total", map[string]string{"operation": "PUT /api/hubs/{hub}/groups/{group}/connections/{connectionId}", "status": "400"}, 1},
	}
	for _, w := range want {
		got, ok := s.value(w.name, w.labels)
		switch {
		case !ok:
			t.Errorf("%s%v: no sample", w.name, w.labels)
		case got != w.value:
			t.Errorf("%s%v = %g, want %g", w.name, w.labels, got, w.value)
		}
	}
	// The REST sends to hub slow: as many 202s as the loop made.
	if got, _ := s.value("switchboard_rest_calls_total", map[string]string{"operation": "POST /api/hubs/{hub}/:send", "status": "202"}); got < 3 {
		t.Errorf("REST :send 202s = %g, want the 2 to chat and those to slow", got)
	}
	// The send that overflowed the slow client's queue was dropped for it.
	if got, _ := s.value("switchboard_messages_dropped_total", map[string]string{"hub": "slow"}); got < 1 {
		t.Errorf("messages dropped on hub slow = %g, want at least the one that overflowed the queue", got)
	}
	if age, ok := s.value("switchboard_outbox_oldest_age_seconds", nil); !ok || age <= 0 {
		t.Errorf("switchboard_outbox_oldest_age_seconds = %g (present %v), want > 0 with a notification waiting", age, ok)
	}

	docs := documentedMetrics(t)
	checkDocumented(t, s, docs)
	for name := range docs {
		if _, ok := s[name]; !ok && !slices.Contains(busMetrics, name) {
			t.Errorf("%s is documented but not exposed", name)
		}
	}

	// The main listener wants the admin key; the metrics listener does
	// not, and serves the same figures.
	for _, key := range []string{"", "sbadm_wrong"} {
		status, body := do(t, http.MethodGet, g.url+"/metrics", key, nil)
		if status != http.StatusUnauthorized || !strings.Contains(string(body), `"error"`) {
			t.Errorf("/metrics with key %q: %d %s, want 401 with a JSON error", key, status, body)
		}
	}
	open := scrapeAt(t, "http://"+g.node.MetricsAddr().String()+"/metrics", "")
	if got, _ := open.value("switchboard_connections_opened_total", map[string]string{"hub": "chat"}); got != 3 {
		t.Errorf("--metrics-listen: opened = %g, want 3", got)
	}

	// A deleted upstream takes its series with it.
	g.admin(http.MethodDelete, "/admin/hubs/chat/upstreams/broken", nil, http.StatusNoContent)
	s = scrapeAt(t, g.url+"/metrics", g.adminKey)
	for _, name := range []string{"switchboard_webhook_calls_total", "switchboard_webhook_duration_seconds", "switchboard_upstream_breaker_state"} {
		if _, ok := s.value(name, map[string]string{"upstream": "broken"}); ok {
			t.Errorf("%s still has series of the deleted upstream", name)
		}
	}
	if _, ok := s.value("switchboard_webhook_calls_total", map[string]string{"upstream": "rec"}); !ok {
		t.Error("the upstreams left lost their series too")
	}
}

// slowReader opens a WebSocket to hub slow, completes the handshake and
// then never reads.
func slowReader(t *testing.T, g *gw) *websocket.Conn {
	t.Helper()
	status, body := do(t, http.MethodPost, g.url+"/client/negotiate?hub=slow&negotiateVersion=1", "", nil)
	if status != http.StatusOK {
		t.Fatalf("negotiate: %d %s", status, body)
	}
	var n struct{ ConnectionToken string }
	if err := json.Unmarshal(body, &n); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/client/?hub=slow&id="+n.ConnectionToken, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("{\"protocol\":\"json\",\"version\":1}\x1e")); err != nil {
		t.Fatal(err)
	}
	// The handshake answer is read; nothing after it is.
	if _, data, err := ws.Read(ctx); err != nil || string(data) != "{}\x1e" {
		t.Fatalf("handshake answer %q: %v", data, err)
	}
	return ws
}

// TestMetricsBus: the bus counters of clustered nodes. A REST send on n1
// reaches a client of n2 through NATS, and n2 counts the message it
// received under its node id.
func TestMetricsBus(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	start := func(id string) *gw {
		return startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), id+".db"),
			NodeID: id, NATS: nats.url(), Logger: quietLogger(t)})
	}
	n1 := start("m1")
	n2 := start("m2")
	n2.adminKey = n1.adminKey
	n1.createHub("bus", true)
	box := newInbox()
	testutil.Eventually(t, waitFor, "n2 to know hub bus", func() bool {
		status, _ := do(t, http.MethodGet, n2.url+"/admin/hubs/bus", n2.adminKey, nil)
		return status == http.StatusOK
	})
	n2.dial("bus", "", map[string]func([]json.RawMessage){"msg": box.handler()})
	// n1 learns that n2 has a connection of hub bus from its interest; the
	// send is repeated until one arrives.
	testutil.Eventually(t, waitFor, "a send on m1 to reach m2's client", func() bool {
		n1.restWant(http.MethodPost, "/api/hubs/bus/:send", msg("across"), http.StatusAccepted)
		select {
		case <-box.ch:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
	s := scrapeAt(t, n2.url+"/metrics", n2.adminKey)
	if got, ok := s.value("switchboard_bus_messages_received_total", map[string]string{"node": "m2"}); !ok || got < 1 {
		t.Errorf("m2 bus messages received = %g (present %v), want >= 1", got, ok)
	}
	for _, reason := range []string{"invalid", "buffer"} {
		if got, ok := s.value("switchboard_bus_messages_dropped_total", map[string]string{"node": "m2", "reason": reason}); !ok || got != 0 {
			t.Errorf("m2 bus drops (%s) = %g (present %v), want 0", reason, got, ok)
		}
	}
	docs := documentedMetrics(t)
	checkDocumented(t, s, docs)
	for _, name := range busMetrics {
		if _, ok := docs[name]; !ok {
			t.Errorf("%s is not in docs/operations.md", name)
		}
	}
}
