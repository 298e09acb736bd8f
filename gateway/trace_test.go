package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/internal/tracing"
)

// TestOpTraceValidated: the trace context of an op comes from another node
// over the bus, so Validate refuses a malformed one like any bad field.
func TestOpTraceValidated(t *testing.T) {
	t.Parallel()
	const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	closeOp := func(tp, ts string) *Op {
		return &Op{Hub: "chat", Action: &actions.Action{Action: actions.CloseConnection, ConnectionID: "n.c1"}, TraceParent: tp, TraceState: ts}
	}
	for _, tt := range []struct {
		name   string
		tp, ts string
		ok     bool
	}{
		{"none", "", "", true},
		{"traceparent", good, "", true},
		{"with tracestate", good, "vendor=1,other=x", true},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01", "", false},
		{"not hex", "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01", "", false},
		{"garbage", strings.Repeat("x", 100), "", false},
		{"tracestate alone", "", "vendor=1", false},
		{"bad tracestate", good, "=,=", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := closeOp(tt.tp, tt.ts).Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestOpCarriesCloseTrace: a close asked for under a trace carries it in
// the op, and the op gives back the same span context.
func TestOpCarriesCloseTrace(t *testing.T) {
	t.Parallel()
	ctx := tracing.FromStrings(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=1")
	op := &Op{Hub: "chat", Close: &CloseOp{}}
	op.setTrace(ctx)
	if op.TraceParent == "" || op.TraceState != "vendor=1" {
		t.Fatalf("op trace = %q %q", op.TraceParent, op.TraceState)
	}
	sc := op.traceCause()
	if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.SpanID().String() != "00f067aa0ba902b7" || !sc.IsRemote() {
		t.Fatalf("traceCause = %v", sc)
	}
	empty := &Op{Hub: "chat", Close: &CloseOp{}}
	empty.setTrace(context.Background())
	if empty.TraceParent != "" || empty.traceCause().IsValid() {
		t.Fatalf("an op closed without a trace carries %q", empty.TraceParent)
	}
}
