// Package kvlist reads the current entries of a NATS JetStream KV bucket
// that match subject filters, for the store and the cluster registry alike.
// It is safe for concurrent use.
package kvlist

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// List returns the current entries of kv whose keys match the filters
// (subject wildcards), in stream order, skipping deleted keys. One ordered
// consumer reads them all, so a list is one round trip plus the data, not
// one Get per key.
func List(ctx context.Context, kv jetstream.KeyValue, filters ...string) ([]jetstream.KeyValueEntry, error) {
	w, err := kv.WatchFiltered(ctx, filters, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("kvlist: watcher stopped")
			}
			if e == nil { // every current value delivered
				return out, nil
			}
			out = append(out, e)
		}
	}
}
