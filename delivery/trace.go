package delivery

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/internal/tracing"
	"github.com/switchboard-gw/switchboard/upstream"
)

// Every webhook request carries the W3C trace context of the context it is
// sent under (traceparent, and tracestate when there is one), so a
// function's own tracing continues the trace of the client call, REST call
// or action that caused the event. With a TracerProvider each attempt is a
// client span "webhook EVENT", child of that context, and the request
// carries the span's id as its parent; without one the caller's context is
// sent unchanged (nothing at all when it has none). Notifications keep
// their cause's trace context in the outbox record, so a retry, even after
// a restart, joins the same trace.

const tracerName = "github.com/switchboard-gw/switchboard/delivery"

// Span attribute keys.
var (
	attrUpstream = attribute.Key("switchboard.upstream")
	attrHub      = attribute.Key("signalr.hub")
	attrEvent    = attribute.Key("switchboard.event")
	attrEventID  = attribute.Key("cloudevents.event_id")
	attrAttempt  = attribute.Key("switchboard.webhook.attempt")
	attrStatus   = attribute.Key("http.response.status_code")
)

// startSpan starts the client span of one attempt to deliver ev to t.
func (d *Dispatcher) startSpan(ctx context.Context, t Target, ev *upstream.Event, id string, attempt int) (context.Context, trace.Span) {
	if d.tracer == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return d.tracer.Start(ctx, "webhook "+ev.Event, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrUpstream.String(t.Name), attrHub.String(ev.Hub), attrEvent.String(ev.Event),
			attrEventID.String(id), attrAttempt.Int(attempt)))
}

// endSpan records an attempt's outcome: the HTTP status when there was an
// answer, and the failure, and ends span.
func endSpan(span trace.Span, status int, err error) {
	if !span.IsRecording() {
		return
	}
	if status != 0 {
		span.SetAttributes(attrStatus.Int(status))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// injectTrace adds ctx's trace context to a request's headers. Nothing
// is added when ctx carries no recorded span.
func injectTrace(ctx context.Context, h headerList) headerList {
	tp, ts := tracing.Strings(ctx)
	if tp == "" {
		return h
	}
	h = append(h, headerField{"Traceparent", tp})
	if ts != "" {
		h = append(h, headerField{"Tracestate", ts})
	}
	return h
}
