package store

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// lostAnswerKV is a real bucket whose Create stores the value and then
// reports the timeout a loaded cluster can give after the write landed: a
// fault no test can bring about on demand. With store false it fails
// without storing.
type lostAnswerKV struct {
	jetstream.KeyValue
	store bool
}

func (kv lostAnswerKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if kv.store {
		if _, err := kv.KeyValue.Create(ctx, key, value, opts...); err != nil {
			return 0, err
		}
	}
	return 0, nats.ErrTimeout
}

// A key whose create timed out after it was stored is this node's: the
// caller learns it created it (so it shows the admin key once) and gets
// the value it made. A create that stored nothing stays an error.
func TestEnsureKeyAfterLostAnswer(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	js := testutil.JetStream(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bucket, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "test-keys"})
	if err != nil {
		t.Fatal(err)
	}
	gen := func(s string) func() (string, error) { return func() (string, error) { return s, nil } }

	if _, created, err := ensureKey(ctx, lostAnswerKV{KeyValue: bucket}, "nothing-stored", gen("a")); err == nil || created {
		t.Errorf("create that stored nothing: created %v, err %v; want the timeout", created, err)
	}
	v, created, err := ensureKey(ctx, lostAnswerKV{KeyValue: bucket, store: true}, "admin", gen("mine"))
	if err != nil || !created || v != "mine" {
		t.Fatalf("create stored, answer lost: %q, created %v, err %v; want \"mine\", created", v, created, err)
	}
	v, created, err = ensureKey(ctx, bucket, "admin", gen("theirs"))
	if err != nil || created || v != "mine" {
		t.Errorf("the next node: %q, created %v, err %v; want \"mine\", not created", v, created, err)
	}
}
