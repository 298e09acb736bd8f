package gateway

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/internal/tracing"
	"github.com/switchboard-gw/switchboard/protocol"
)

// Traces. Every webhook call runs under a context carrying the trace of
// its cause, which package delivery writes into the request's traceparent:
//
//   - connect and connected: the transport request's traceparent, else
//     the negotiate request's (Identity.Trace), else a new trace; a span
//     "signalr connect" covers the handshake and the connect event;
//   - message: the invocation's own "traceparent" and "tracestate"
//     headers (the SignalR message's headers map, JSON and MessagePack
//     alike), else a new trace; a span "signalr invoke" covers the webhook
//     call and the reply's actions;
//   - disconnected: the trace of whoever closed the connection (a
//     closeConnection action or a REST close, carried in the Op, so it
//     crosses nodes), else a new trace.
//
// Spans are made only with Config.TracerProvider set, and never per
// delivered message: fan-out carries no trace. Without a provider the
// client's trace context still passes through unchanged.

const tracerName = "github.com/switchboard-gw/switchboard/gateway"

// Span attribute keys.
var (
	attrHub    = attribute.Key("signalr.hub")
	attrConn   = attribute.Key("signalr.connection_id")
	attrTarget = attribute.Key("signalr.target")
)

// startConnectSpan starts the span of c's connect: a child of the
// transport request's trace (own), else of the negotiate request's.
func (g *Gateway) startConnectSpan(ctx context.Context, c *Conn, own, negotiated trace.SpanContext) (context.Context, trace.Span) {
	parent := own
	if !parent.IsValid() {
		parent = negotiated
	}
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	if g.tracer == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return g.tracer.Start(ctx, "signalr connect", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attrHub.String(c.hub.name), attrConn.String(c.id)))
}

// startInvokeSpan starts the span of one client invocation, a child of the
// trace context in the message's headers when it has one.
func (g *Gateway) startInvokeSpan(ctx context.Context, c *Conn, m *protocol.Message) (context.Context, trace.Span) {
	ctx = tracing.FromMessageHeaders(ctx, m.Headers)
	if g.tracer == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return g.tracer.Start(ctx, "signalr invoke", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attrHub.String(c.hub.name), attrConn.String(c.id), attrTarget.String(m.Target)))
}

// endSpan ends span, marking it failed with err when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// closeContext is the context the disconnected event of c goes out under:
// it carries the trace of whoever closed c, if anyone did.
func (c *Conn) closeContext() context.Context {
	c.mu.Lock()
	cause := c.ended.get().cause
	c.mu.Unlock()
	if !cause.IsValid() {
		return context.Background()
	}
	return trace.ContextWithRemoteSpanContext(context.Background(), cause)
}

// setTrace records ctx's trace context in op, for an op that causes
// webhooks (a close) wherever it is applied.
func (op *Op) setTrace(ctx context.Context) {
	op.TraceParent, op.TraceState = tracing.Strings(ctx)
}

// traceCause is the span context op carries; invalid when none.
func (op *Op) traceCause() trace.SpanContext {
	if op.TraceParent == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(tracing.FromStrings(context.Background(), op.TraceParent, op.TraceState))
}
