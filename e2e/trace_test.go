package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/vmihailenco/msgpack/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// These tests check that W3C trace context travels from what a client or
// REST caller sends into the webhooks it causes, and that the spans the
// gateway records (with the OpenTelemetry SDK's in-memory recorder) link
// up: caller → gateway server span → webhook client span → the
// traceparent the upstream receives.

// A caller's trace context, as a browser's or a service's tracing would
// send it: version 00, sampled.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// tracedSetup starts a node with hub "chat" (anonymous clients allowed)
// and a recording upstream for every event. With traced, the node's spans
// go to the returned recorder; without, the node has no TracerProvider.
func tracedSetup(t *testing.T, traced bool) (*gw, *recorder, *tracetest.SpanRecorder) {
	t.Helper()
	var sr *tracetest.SpanRecorder
	g := startNode(t, func(c *node.Config) {
		if traced {
			sr = tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			t.Cleanup(func() { tp.Shutdown(context.Background()) })
			c.TracerProvider = tp
		}
	})
	g.createHub("chat", true)
	rec := newRecorder(t)
	secret := g.addUpstream("chat", "rec", rec.URL()+"/{hub}/{category}/{event}")
	rec.mu.Lock()
	rec.secret = secret
	rec.mu.Unlock()
	return g, rec, sr
}

// parent is a parsed traceparent header.
type parent struct {
	traceID, spanID string
}

func parseParent(t *testing.T, h http.Header) parent {
	t.Helper()
	v := h.Get("traceparent")
	parts := strings.Split(v, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		t.Fatalf("webhook traceparent %q is not a W3C traceparent", v)
	}
	return parent{traceID: parts[1], spanID: parts[2]}
}

// waitSpan waits for an ended span called name in trace traceID.
func waitSpan(t *testing.T, sr *tracetest.SpanRecorder, name, traceID string) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		for _, s := range sr.Ended() {
			if s.Name() == name && s.SpanContext().TraceID().String() == traceID {
				return s
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range sr.Ended() {
				names = append(names, s.Name()+"@"+s.SpanContext().TraceID().String())
			}
			t.Fatalf("no span %q in trace %s within %s; ended: %v", name, traceID, waitFor, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSpanID waits for the ended span with id, which must be called name.
func waitSpanID(t *testing.T, sr *tracetest.SpanRecorder, name, id string) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		for _, s := range sr.Ended() {
			if spanID(s) == id {
				if s.Name() != name {
					t.Fatalf("span %s is %q, want %q", id, s.Name(), name)
				}
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span %s (%q) ended within %s", id, name, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantChild fails unless child's parent is the span with id parentID.
func wantChild(t *testing.T, child sdktrace.ReadOnlySpan, parentID string) {
	t.Helper()
	if got := child.Parent().SpanID().String(); got != parentID {
		t.Errorf("span %q: parent %s, want %s", child.Name(), got, parentID)
	}
}

func spanID(s sdktrace.ReadOnlySpan) string { return s.SpanContext().SpanID().String() }

// jsonInvocation is a JSON hub protocol send (no invocation id) of target
// with headers, as the ASP.NET Core protocol defines them.
func jsonInvocation(target string, headers map[string]string) []byte {
	m := map[string]any{"type": 1, "target": target, "arguments": []string{"hi"}}
	if headers != nil {
		m["headers"] = headers
	}
	b, _ := json.Marshal(m)
	return append(b, 0x1e)
}

// msgpackInvocation is the MessagePack form: [1, headers, invocationId,
// target, arguments], framed by its VarInt length.
func msgpackInvocation(t *testing.T, target string, headers map[string]string) []byte {
	t.Helper()
	if headers == nil {
		headers = map[string]string{}
	}
	body, err := msgpack.Marshal([]any{1, headers, nil, target, []any{"hi"}})
	if err != nil {
		t.Fatal(err)
	}
	var frame []byte
	for n := uint64(len(body)); ; n >>= 7 {
		if n < 0x80 {
			frame = append(frame, byte(n))
			break
		}
		frame = append(frame, byte(n)|0x80)
	}
	return append(frame, body...)
}

// TestTraceInvocationHeaders: a trace id a client gives in an invocation's
// headers (JSON and MessagePack) arrives in the message webhook's
// traceparent. With tracing on, the webhook's parent is the gateway's
// "webhook message" span, child of "signalr invoke", child of the client's
// span; a malformed or missing traceparent starts a new trace. With
// tracing off, the client's traceparent arrives unchanged.
func TestTraceInvocationHeaders(t *testing.T) {
	t.Parallel()
	for _, traced := range []bool{true, false} {
		t.Run(fmt.Sprint("traced=", traced), func(t *testing.T) {
			t.Parallel()
			g, rec, sr := tracedSetup(t, traced)
			for _, tt := range []struct {
				name, protocol string
				headers        map[string]string
				wantTrace      string // "" for a new trace (traced) or no traceparent (not traced)
			}{
				{"json", "json", map[string]string{"traceparent": callerParent, "tracestate": "vendor=abc"}, callerTrace},
				{"messagepack", "messagepack", map[string]string{"traceparent": callerParent}, callerTrace},
				{"json other case", "json", map[string]string{"TraceParent": callerParent}, callerTrace},
				{"json none", "json", nil, ""},
				{"json malformed", "json", map[string]string{"traceparent": "00-" + strings.Repeat("0", 32) + "-" + callerSpan + "-01"}, ""},
				{"messagepack garbage", "messagepack", map[string]string{"traceparent": strings.Repeat("x", 300)}, ""},
			} {
				target := strings.ReplaceAll(tt.name, " ", "_")
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				c, err := client.Dial(ctx, g.url+"/client/?hub=chat", &client.Options{Protocol: tt.protocol})
				if err != nil {
					cancel()
					t.Fatalf("%s: dial: %v", tt.name, err)
				}
				frame := jsonInvocation(target, tt.headers)
				if tt.protocol == "messagepack" {
					frame = msgpackInvocation(t, target, tt.headers)
				}
				if err := c.SendRaw(ctx, frame); err != nil {
					t.Fatalf("%s: send: %v", tt.name, err)
				}
				ev := rec.waitEvent(func(r *received) bool { return r.Event.Event == upstream.EventMessage && r.Event.Target == target })
				c.Close()
				cancel()

				switch {
				case !traced && tt.wantTrace == "":
					if v := ev.Header.Get("traceparent"); v != "" {
						t.Errorf("%s: tracing off and no trace given, yet the webhook carries traceparent %q", tt.name, v)
					}
					continue
				case !traced:
					// Passed through untouched: the upstream's parent is the client's span.
					if v := ev.Header.Get("traceparent"); v != callerParent {
						t.Errorf("%s: webhook traceparent %q, want the client's %q", tt.name, v, callerParent)
					}
					if v, want := ev.Header.Get("tracestate"), tt.headers["tracestate"]; v != want {
						t.Errorf("%s: webhook tracestate %q, want %q", tt.name, v, want)
					}
					continue
				}
				got := parseParent(t, ev.Header)
				if tt.wantTrace != "" && got.traceID != tt.wantTrace {
					t.Errorf("%s: webhook trace id %s, want the client's %s", tt.name, got.traceID, tt.wantTrace)
				}
				if tt.wantTrace == "" && (got.traceID == callerTrace || got.traceID == strings.Repeat("0", 32)) {
					t.Errorf("%s: webhook trace id %s, want a new trace", tt.name, got.traceID)
				}
				// The upstream's parent is the gateway's webhook span, whose
				// parent is the invocation's span.
				hook := waitSpanID(t, sr, "webhook message", got.spanID)
				if hook.SpanContext().TraceID().String() != got.traceID {
					t.Errorf("%s: webhook span in trace %s, want %s", tt.name, hook.SpanContext().TraceID(), got.traceID)
				}
				if hook.SpanKind() != trace.SpanKindClient {
					t.Errorf("%s: webhook span kind %v, want client", tt.name, hook.SpanKind())
				}
				inv := waitSpanID(t, sr, "signalr invoke", hook.Parent().SpanID().String())
				if tt.wantTrace != "" {
					wantChild(t, inv, callerSpan)
					if !inv.Parent().IsRemote() {
						t.Errorf("%s: invoke span's parent is not the remote client span", tt.name)
					}
				} else if inv.Parent().IsValid() {
					t.Errorf("%s: invoke span has parent %s, want a root span", tt.name, inv.Parent().SpanID())
				}
				if v, want := hook.SpanContext().TraceState().String(), tt.headers["tracestate"]; v != want {
					t.Errorf("%s: tracestate %q, want %q", tt.name, v, want)
				}
			}
		})
	}
}

// TestTraceNegotiate: a traceparent on negotiate only (a browser, whose
// WebSocket cannot carry headers) reaches the connect webhook and the
// connected one, through the durable outbox; the spans are negotiate →
// connect → webhook connect and → webhook connected.
func TestTraceNegotiate(t *testing.T) {
	t.Parallel()
	g, rec, sr := tracedSetup(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.url+"/client/negotiate?hub=chat&negotiateVersion=1", nil)
	req.Header.Set("traceparent", callerParent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var neg struct {
		ConnectionID    string `json:"connectionId"`
		ConnectionToken string `json:"connectionToken"`
	}
	err = json.NewDecoder(resp.Body).Decode(&neg)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate: %d %v", resp.StatusCode, err)
	}
	// The socket brings no traceparent of its own.
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/client/?hub=chat&id="+neg.ConnectionToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("{\"protocol\":\"json\",\"version\":1}\x1e")); err != nil {
		t.Fatal(err)
	}
	if _, data, err := ws.Read(ctx); err != nil || string(data) != "{}\x1e" {
		t.Fatalf("handshake answer %q, %v", data, err)
	}

	negSpan := waitSpan(t, sr, "POST /client/negotiate", callerTrace)
	wantChild(t, negSpan, callerSpan)
	conn := waitSpan(t, sr, "signalr connect", callerTrace)
	wantChild(t, conn, spanID(negSpan))
	for _, event := range []string{upstream.EventConnect, upstream.EventConnected} {
		ev := rec.waitEvent(isEvent(event, neg.ConnectionID))
		got := parseParent(t, ev.Header)
		if got.traceID != callerTrace {
			t.Errorf("%s webhook: trace id %s, want the negotiate request's %s", event, got.traceID, callerTrace)
			continue
		}
		hook := waitSpanID(t, sr, "webhook "+event, got.spanID)
		wantChild(t, hook, spanID(conn))
	}
}

// TestTraceRESTClose: a REST caller's traceparent on DELETE
// .../connections/{id} reaches the disconnected webhook the close causes;
// the webhook span is a child of the REST request's server span.
func TestTraceRESTClose(t *testing.T) {
	t.Parallel()
	g, rec, sr := tracedSetup(t, true)
	c := g.dial("chat", "", nil)
	id := c.ConnectionID()
	rec.waitEvent(isEvent(upstream.EventConnected, id))

	path := "/api/hubs/chat/connections/" + id
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, g.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+g.restToken(g.url+path))
	req.Header.Set("traceparent", callerParent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE %s: %d", path, resp.StatusCode)
	}

	ev := rec.waitEvent(isEvent(upstream.EventDisconnected, id))
	got := parseParent(t, ev.Header)
	if got.traceID != callerTrace {
		t.Fatalf("disconnected webhook: trace id %s, want the REST caller's %s", got.traceID, callerTrace)
	}
	restSpan := waitSpan(t, sr, "DELETE /api/hubs/:hub/connections/:connectionId", callerTrace)
	wantChild(t, restSpan, callerSpan)
	if restSpan.SpanKind() != trace.SpanKindServer {
		t.Errorf("REST span kind %v, want server", restSpan.SpanKind())
	}
	hook := waitSpanID(t, sr, "webhook disconnected", got.spanID)
	wantChild(t, hook, spanID(restSpan))
}

// TestTraceInventedMethod: a REST request's method is the client's own
// string, so one HTTP does not define becomes "_OTHER" in its span, and
// the span is named "HTTP" and the route, as OpenTelemetry's conventions
// say; the client's string appears nowhere in it.
func TestTraceInventedMethod(t *testing.T) {
	t.Parallel()
	g, _, sr := tracedSetup(t, true)
	invented := "BREW" + strings.Repeat("X", 500)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, invented, g.url+"/api/hubs/chat/:send", nil)
	req.Header.Set("traceparent", callerParent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	span := waitSpan(t, sr, "HTTP /api/hubs/:hub/*", callerTrace)
	for _, a := range span.Attributes() {
		if strings.Contains(a.Value.String(), "BREW") {
			t.Errorf("span attribute %s = %q carries the client's method", a.Key, a.Value.String())
		}
		if a.Key == "http.request.method" && a.Value.AsString() != "_OTHER" {
			t.Errorf("http.request.method = %q, want _OTHER", a.Value.AsString())
		}
	}
}

// TestTraceReplyAction: a webhook reply's closeConnection action carries
// the invocation's trace to the disconnected webhook it triggers.
func TestTraceReplyAction(t *testing.T) {
	t.Parallel()
	g, rec, sr := tracedSetup(t, true)
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event == upstream.EventMessage && ev.Target == "leave" {
			return http.StatusOK, map[string]any{"actions": []actions.Action{{Action: actions.CloseConnection, Reason: "bye"}}}
		}
		return http.StatusNoContent, nil
	})
	c := g.dial("chat", "", nil)
	id := c.ConnectionID()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.SendRaw(ctx, jsonInvocation("leave", map[string]string{"traceparent": callerParent})); err != nil {
		t.Fatal(err)
	}
	ev := rec.waitEvent(isEvent(upstream.EventDisconnected, id))
	got := parseParent(t, ev.Header)
	if got.traceID != callerTrace {
		t.Fatalf("disconnected webhook: trace id %s, want the invocation's %s", got.traceID, callerTrace)
	}
	hook := waitSpanID(t, sr, "webhook disconnected", got.spanID)
	inv := waitSpanID(t, sr, "signalr invoke", hook.Parent().SpanID().String())
	wantChild(t, inv, callerSpan)
}

// TestTraceCloseAcrossNodes: a REST close sent to n2 for a connection of
// n1 travels over NATS with its trace context; n1's disconnected webhook
// continues the REST caller's trace, its span a child of n2's REST span.
func TestTraceCloseAcrossNodes(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	start := func(id string) *gw {
		return startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), id+".db"),
			NodeID: id, NATS: nats.url(), Logger: quietLogger(t), TracerProvider: tp})
	}
	n1, n2 := start("t1"), start("t2")
	n2.adminKey = n1.adminKey
	n1.createHub("chat", true)
	rec := newRecorder(t)
	rec.secret = n1.addUpstream("chat", "rec", rec.URL()+"/{event}", "connected", "disconnected")
	c := n1.dial("chat", "", nil)
	id := c.ConnectionID()
	rec.waitEvent(isEvent(upstream.EventConnected, id))

	path := "/api/hubs/chat/connections/" + id
	del := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, n2.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+n2.restToken(n2.url+path))
		req.Header.Set("traceparent", callerParent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// n2 learns of the hub through the shared configuration first.
	testutil.Eventually(t, waitFor, "n2 to close n1's connection", func() bool { return del() == http.StatusOK })

	ev := rec.waitEvent(isEvent(upstream.EventDisconnected, id))
	got := parseParent(t, ev.Header)
	if got.traceID != callerTrace {
		t.Fatalf("disconnected webhook from n1: trace id %s, want the REST caller's %s", got.traceID, callerTrace)
	}
	hook := waitSpanID(t, sr, "webhook disconnected", got.spanID)
	restSpan := waitSpanID(t, sr, "DELETE /api/hubs/:hub/connections/:connectionId", hook.Parent().SpanID().String())
	wantChild(t, restSpan, callerSpan)
}

// TestTraceTransports: over each transport the transport request's own
// traceparent (the Go client sends its headers on every request) is the
// connect span's parent, and an invocation's headers reach the message
// webhook whether it came in a WebSocket frame or a POST body.
func TestTraceTransports(t *testing.T) {
	t.Parallel()
	g, rec, sr := tracedSetup(t, true)
	for i, tr := range []string{"websockets", "serversentevents", "longpolling"} {
		connTrace := fmt.Sprintf("%032x", 0xa0+i)
		invTrace := fmt.Sprintf("%032x", 0xb0+i)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		c, err := client.Dial(ctx, g.url+"/client/?hub=chat", &client.Options{Transport: tr,
			Header: http.Header{"Traceparent": {"00-" + connTrace + "-" + callerSpan + "-01"}}})
		if err != nil {
			cancel()
			t.Fatalf("%s: dial: %v", tr, err)
		}
		target := "via_" + tr
		err = c.SendRaw(ctx, jsonInvocation(target, map[string]string{"traceparent": "00-" + invTrace + "-" + callerSpan + "-01"}))
		if err != nil {
			t.Fatalf("%s: send: %v", tr, err)
		}
		connect := rec.waitEvent(isEvent(upstream.EventConnect, c.ConnectionID()))
		msg := rec.waitEvent(func(r *received) bool { return r.Event.Target == target })
		c.Close()
		cancel()

		got := parseParent(t, connect.Header)
		if got.traceID != connTrace {
			t.Errorf("%s: connect webhook trace %s, want the transport request's %s", tr, got.traceID, connTrace)
		} else {
			hook := waitSpanID(t, sr, "webhook connect", got.spanID)
			conn := waitSpanID(t, sr, "signalr connect", hook.Parent().SpanID().String())
			wantChild(t, conn, callerSpan)
		}
		if got := parseParent(t, msg.Header); got.traceID != invTrace {
			t.Errorf("%s: message webhook trace %s, want the invocation's %s", tr, got.traceID, invTrace)
		}
	}
}
