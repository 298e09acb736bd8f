// Package tracing holds what the gateway's packages share to carry W3C
// Trace Context (traceparent, tracestate) and to make OpenTelemetry spans:
// one propagator, conversions between a context and the two header
// strings, and the rule that a nil TracerProvider means tracing is off.
//
// Off means no span is ever started, yet a trace context a client sent is
// still carried to the webhooks it causes: the context's remote span
// context passes through unchanged, so the upstream sees the client's
// trace id without the gateway paying for spans.
//
// Concurrency: the package has no state; every function is safe for
// concurrent use.
package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Propagator reads and writes the W3C traceparent and tracestate headers.
// It is used whatever OTEL_PROPAGATORS says: the webhook contract promises
// W3C Trace Context, not whatever the operator's SDK defaults to.
var Propagator = propagation.TraceContext{}

// Tracer returns the tracer named name of tp, or nil when tp is nil
// (tracing off). Callers keep the result and test it for nil before each
// span, so that tracing off costs one comparison.
func Tracer(tp trace.TracerProvider, name string) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(name)
}

// Start starts a span on t, or returns ctx and a span that does nothing
// when t is nil.
func Start(ctx context.Context, t trace.Tracer, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return t.Start(ctx, name, opts...)
}

// FromStrings returns ctx carrying the remote span context of a
// traceparent and tracestate pair. An invalid traceparent is ignored, as
// the W3C specification requires (the receiver then starts a new trace),
// and so is an invalid tracestate.
//
// Without a traceparent it allocates nothing: the delivery path calls it
// for every notification.
func FromStrings(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return Propagator.Extract(ctx, &pair{parent: traceparent, state: tracestate})
}

// Strings returns the traceparent and tracestate of ctx's span context,
// both "" (and nothing allocated) when it has none.
func Strings(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	p := &pair{}
	Propagator.Inject(ctx, p)
	return p.parent, p.state
}

// Valid reports whether traceparent and tracestate are absent or well
// formed, for values that arrive where a bad one is an error (the cluster
// bus, the outbox) rather than a reason to start a new trace.
func Valid(traceparent, tracestate string) bool {
	if traceparent == "" {
		return tracestate == ""
	}
	sc := trace.SpanContextFromContext(FromStrings(context.Background(), traceparent, ""))
	if !sc.IsValid() {
		return false
	}
	if tracestate != "" {
		if _, err := trace.ParseTraceState(tracestate); err != nil {
			return false
		}
	}
	return true
}

// FromMessageHeaders returns ctx carrying the remote span context of a
// SignalR message's headers (traceparent, tracestate). Header names are
// matched without regard to case, as HTTP's are: clients copy them from
// HTTP libraries in any spelling.
func FromMessageHeaders(ctx context.Context, h map[string]string) context.Context {
	if len(h) == 0 {
		return ctx
	}
	tp, ok := h["traceparent"]
	ts := h["tracestate"]
	if !ok {
		for k, v := range h {
			switch {
			case strings.EqualFold(k, "traceparent"):
				tp = v
			case strings.EqualFold(k, "tracestate"):
				ts = v
			}
		}
	}
	return FromStrings(ctx, tp, ts)
}

// pair is a propagation.TextMapCarrier over two strings, so that reading
// and writing them needs no map. (Made only on the paths that have a trace:
// a pointer to a variable taken on the fast path would move it to the heap
// for every call.)
type pair struct{ parent, state string }

func (p *pair) Get(key string) string {
	switch key {
	case "traceparent":
		return p.parent
	case "tracestate":
		return p.state
	}
	return ""
}

func (p *pair) Set(key, value string) {
	switch key {
	case "traceparent":
		p.parent = value
	case "tracestate":
		p.state = value
	}
}

func (p *pair) Keys() []string { return []string{"traceparent", "tracestate"} }
