package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/store"
)

// startNATS starts an embedded NATS server with JetStream for the test.
func startNATS(t *testing.T) *natsembed.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// openKV connects to s, as one node would, and opens the shared config.
func openKV(t *testing.T, s *natsembed.Server, opts ...store.KVOption) *store.KV {
	t.Helper()
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := store.OpenKV(ctx, js, opts...)
	if err != nil {
		t.Fatalf("OpenKV: %v", err)
	}
	return kv
}

func TestKVSmoke(t *testing.T) {
	kv := openKV(t, startNATS(t))
	if _, err := kv.CreateHub(store.Hub{Name: "chat"}); err != nil {
		t.Fatal(err)
	}
	h, err := kv.Hub("chat")
	if err != nil || h.Name != "chat" {
		t.Fatalf("Hub = %+v, %v", h, err)
	}
}
