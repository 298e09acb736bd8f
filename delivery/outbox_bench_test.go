package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/upstream"

	"github.com/switchboard-gw/switchboard/store"
)

// benchDispatcher runs a dispatcher on a bbolt store in b's temp dir with
// one upstream; held keeps the upstream disabled so nothing is delivered.
func benchDispatcher(b *testing.B, url string, held bool) *Dispatcher {
	db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	d, err := NewDispatcher(DispatcherConfig{Store: db, OutboxLimit: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close(b.Context()); db.Close() })
	d.SetTargets([]Target{{Hub: "chat", Name: "fn", URLTemplate: url, Secrets: []string{testSecret}, Disabled: held}})
	return d
}

// BenchmarkOutboxWrite measures durable Notify calls per second from many
// connections at once (group commit batches their fsyncs).
func BenchmarkOutboxWrite(b *testing.B) {
	d := benchDispatcher(b, "http://127.0.0.1:1/", true)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		conn := fmt.Sprint("c", n.Add(1))
		for pb.Next() {
			d.Notify(context.Background(), &upstream.Event{Hub: "chat", ConnectionID: conn, Event: upstream.EventConnected})
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkOutboxDeliver measures notifications per second written and
// delivered to a local upstream that answers 204 at once.
func BenchmarkOutboxDeliver(b *testing.B) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	d := benchDispatcher(b, srv.URL, false)
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		conn := fmt.Sprint("c", n.Add(1))
		for pb.Next() {
			d.Notify(context.Background(), &upstream.Event{Hub: "chat", ConnectionID: conn, Event: upstream.EventConnected})
		}
	})
	deadline := time.Now().Add(time.Minute)
	for d.Status().Outbox.Depth > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(got.Load())/b.Elapsed().Seconds(), "delivered/s")
}
