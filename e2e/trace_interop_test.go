package e2e

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/switchboard-gw/switchboard/upstream"
)

// TestInteropTraceHeaders runs test/interop/trace/trace-headers.mjs: the
// official @microsoft/signalr client sends traceparent on negotiate and the
// WebSocket (its headers option) and in its invocations' headers (its JSON
// hub protocol, wrapped); the connect webhook continues the first trace,
// every message webhook the second, each through the gateway's spans.
func TestInteropTraceHeaders(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	requireNodeModules(t, filepath.Join(root, "test", "interop"), "npm ci --prefix test/interop")
	g, rec, sr := tracedSetup(t, true)
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event == upstream.EventMessage && ev.Target == "echo" {
			return http.StatusOK, map[string]any{"result": "traced"}
		}
		return http.StatusNoContent, nil
	})
	const (
		connectTrace = "11111111111111111111111111111111"
		connectSpan  = "2222222222222222"
		invokeTrace  = "33333333333333333333333333333333"
		invokeSpan   = "4444444444444444"
	)
	runNode(t, root, []string{"GATEWAY_URL=" + g.url, "CONTROL_URL=" + g.url, "APP_URL=" + g.url,
		"CONNECT_PARENT=00-" + connectTrace + "-" + connectSpan + "-01",
		"INVOKE_PARENT=00-" + invokeTrace + "-" + invokeSpan + "-01"},
		"--test", "--test-reporter=spec", filepath.Join("test", "interop", "trace", "trace-headers.mjs"))

	connect := rec.waitEvent(isEvent(upstream.EventConnect, ""))
	got := parseParent(t, connect.Header)
	if got.traceID != connectTrace {
		t.Errorf("connect webhook: trace id %s, want the client's %s", got.traceID, connectTrace)
	}
	hook := waitSpanID(t, sr, "webhook connect", got.spanID)
	conn := waitSpanID(t, sr, "signalr connect", hook.Parent().SpanID().String())
	wantChild(t, conn, connectSpan) // the WebSocket's own traceparent, not negotiate's span

	var messages int
	for _, ev := range rec.all() {
		if ev.Event.Event != upstream.EventMessage {
			continue
		}
		messages++
		got := parseParent(t, ev.Header)
		if got.traceID != invokeTrace {
			t.Errorf("message webhook %s: trace id %s, want the invocation's %s", ev.Event.Target, got.traceID, invokeTrace)
			continue
		}
		hook := waitSpanID(t, sr, "webhook message", got.spanID)
		inv := waitSpanID(t, sr, "signalr invoke", hook.Parent().SpanID().String())
		wantChild(t, inv, invokeSpan)
	}
	if messages != 3 {
		t.Errorf("%d message webhooks, want 3 (echo, note, echo)", messages)
	}
}
