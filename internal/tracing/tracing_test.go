package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestNoTraceNoAllocation pins the cost of tracing for events without a
// trace: every notification and webhook goes through these.
func TestNoTraceNoAllocation(t *testing.T) {
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { _ = FromStrings(ctx, "", "") }); n != 0 {
		t.Errorf("FromStrings without a traceparent: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = Strings(ctx) }); n != 0 {
		t.Errorf("Strings without a trace: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = FromMessageHeaders(ctx, nil) }); n != 0 {
		t.Errorf("FromMessageHeaders without headers: %v allocations, want 0", n)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := FromStrings(context.Background(), parent, "a=1,b=2")
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsRemote() || sc.TraceState().String() != "a=1,b=2" {
		t.Fatalf("span context %v", sc)
	}
	if tp, ts := Strings(ctx); tp != parent || ts != "a=1,b=2" {
		t.Fatalf("Strings = %q, %q", tp, ts)
	}
}

func TestFromMessageHeaders(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		h    map[string]string
		want bool
	}{
		{"lower case", map[string]string{"traceparent": parent}, true},
		{"other case", map[string]string{"Traceparent": parent, "TraceState": "a=1"}, true},
		{"other headers only", map[string]string{"x": "y"}, false},
		{"malformed", map[string]string{"traceparent": "00-zz"}, false},
		{"unsupported version ff", map[string]string{"traceparent": "ff" + parent[2:]}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := trace.SpanContextFromContext(FromMessageHeaders(context.Background(), tt.h))
			if sc.IsValid() != tt.want {
				t.Fatalf("valid = %v, want %v", sc.IsValid(), tt.want)
			}
		})
	}
}
