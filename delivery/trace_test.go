package delivery

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/internal/tracing"
	"github.com/switchboard-gw/switchboard/upstream"
)

const (
	causeTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	causeSpan   = "00f067aa0ba902b7"
	causeParent = "00-" + causeTrace + "-" + causeSpan + "-01"
)

// TestOutboxKeepsTraceAcrossRestart: a notification keeps the trace
// context of its cause in the bbolt outbox; after a restart every attempt
// still sends a traceparent of that trace, whose parent is that attempt's
// own client span, a child of the cause.
func TestOutboxKeepsTraceAcrossRestart(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	h.setRespond(func(int, hit) (int, http.Header, string) { return 500, nil, "" })
	db, _ := openStore(t)
	t.Cleanup(func() { db.Close() })
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	cfg := fastRetry
	cfg.Store = db
	cfg.MinRetry, cfg.MaxRetry = time.Hour, time.Hour // one attempt, then wait
	cfg.Logger = testLogger(t)
	cfg.TracerProvider = tp
	d1, err := NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d1.SetTargets([]Target{h.target("chat", "fn")})
	ctx := tracing.FromStrings(context.Background(), causeParent, "vendor=1")
	d1.Notify(ctx, &upstream.Event{Hub: "chat", ConnectionID: "c1", Event: upstream.EventDisconnected, Reason: "bye"})
	h.waitHits(1)
	if err := d1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	h.setRespond(nil)
	cfg.MinRetry, cfg.MaxRetry = 0, 0
	d2 := startDispatcher(t, cfg)
	d2.SetTargets([]Target{h.target("chat", "fn")})
	testutil.Eventually(t, waitFor, "replay delivered", func() bool { return d2.Status().Outbox.Depth == 0 })

	hits := h.all()
	if len(hits) != 2 {
		t.Fatalf("%d attempts, want 2 (one before the restart, one after)", len(hits))
	}
	for i, x := range hits {
		parts := strings.Split(x.hdr.Get("traceparent"), "-")
		if len(parts) != 4 || parts[1] != causeTrace {
			t.Fatalf("attempt %d: traceparent %q, want trace %s", i+1, x.hdr.Get("traceparent"), causeTrace)
		}
		if got := x.hdr.Get("tracestate"); got != "vendor=1" {
			t.Errorf("attempt %d: tracestate %q, want vendor=1", i+1, got)
		}
		var span sdktrace.ReadOnlySpan
		for _, s := range sr.Ended() {
			if s.SpanContext().SpanID().String() == parts[2] {
				span = s
			}
		}
		switch {
		case span == nil:
			t.Errorf("attempt %d: no recorded span %s", i+1, parts[2])
		case span.Name() != "webhook disconnected" || span.SpanKind() != trace.SpanKindClient:
			t.Errorf("attempt %d: span %q kind %v, want client span \"webhook disconnected\"", i+1, span.Name(), span.SpanKind())
		case span.Parent().SpanID().String() != causeSpan:
			t.Errorf("attempt %d: span parent %s, want the cause %s", i+1, span.Parent().SpanID(), causeSpan)
		}
	}
}

// TestNoTraceNoHeader: without a trace context and without a
// TracerProvider, webhooks carry no traceparent; with a TracerProvider,
// a notification without a cause starts a trace of its own.
func TestNoTraceNoHeader(t *testing.T) {
	t.Parallel()
	for _, traced := range []bool{false, true} {
		h := newHook(t)
		cfg := fastRetry
		cfg.Logger = testLogger(t)
		if traced {
			tp := sdktrace.NewTracerProvider()
			t.Cleanup(func() { tp.Shutdown(context.Background()) })
			cfg.TracerProvider = tp
		}
		d := startDispatcher(t, cfg)
		d.SetTargets([]Target{h.target("chat", "fn")})
		d.Notify(context.Background(), &upstream.Event{Hub: "chat", ConnectionID: "c1", Event: upstream.EventConnected})
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		if _, err := d.Call(ctx, message("c1", "send")); err != nil {
			t.Fatal(err)
		}
		cancel()
		for _, x := range h.waitHits(2) {
			got := x.hdr.Get("traceparent")
			if traced != (got != "") {
				t.Errorf("traced=%v: %s webhook traceparent %q", traced, x.ev.Event, got)
			}
		}
	}
}

// TestAzureProfileCarriesTrace: webhooks of the Azure upstream profile
// carry the cause's traceparent like the native ones.
func TestAzureProfileCarriesTrace(t *testing.T) {
	t.Parallel()
	h := newAzureHook(t, http.StatusOK)
	cfg := fastRetry
	cfg.Logger = testLogger(t)
	d := startDispatcher(t, cfg)
	d.SetTargets([]Target{h.target("az", "connected")})
	d.Notify(tracing.FromStrings(context.Background(), causeParent, ""), azureConnected("c1"))
	testutil.Eventually(t, waitFor, "the Azure-profile webhook", func() bool { return len(h.all()) == 1 })
	if got := h.all()[0].hdr.Get("traceparent"); got != causeParent {
		t.Fatalf("traceparent %q, want the cause's %q (tracing off: passed on unchanged)", got, causeParent)
	}
}
