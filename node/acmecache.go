package node

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/acme/autocert"
)

// acmeBucket is the JetStream KV bucket the nodes of a cluster share their
// ACME account key and certificates in, so that one node's order serves
// them all instead of each ordering its own (and running into the CA's
// rate limits).
const acmeBucket = "switchboard_acme"

// acmeCache is autocert's cache: the directory on disk, and in a cluster
// also the shared bucket, which is read first. What is written goes to
// both, so a node restarted while NATS is unreachable still finds its
// certificate on disk. Safe for concurrent use.
type acmeCache struct {
	disk autocert.DirCache
	kv   atomic.Pointer[jetstream.KeyValue] // nil until the node joined a cluster
}

var _ autocert.Cache = (*acmeCache)(nil)

// kvKey encodes an autocert name ("gw.example.com+rsa", "acme_account+key")
// into the characters KV keys allow.
func kvKey(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

func (c *acmeCache) Get(ctx context.Context, name string) ([]byte, error) {
	if kv := c.kv.Load(); kv != nil {
		e, err := (*kv).Get(ctx, kvKey(name))
		if err == nil {
			return e.Value(), nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			// NATS unreachable: the copy on disk may do.
			return c.disk.Get(ctx, name)
		}
	}
	return c.disk.Get(ctx, name)
}

func (c *acmeCache) Put(ctx context.Context, name string, data []byte) error {
	if err := c.disk.Put(ctx, name, data); err != nil {
		return err
	}
	if kv := c.kv.Load(); kv != nil {
		if _, err := (*kv).Put(ctx, kvKey(name), data); err != nil {
			return fmt.Errorf("node: ACME cache in NATS KV: %w", err)
		}
	}
	return nil
}

func (c *acmeCache) Delete(ctx context.Context, name string) error {
	if kv := c.kv.Load(); kv != nil {
		if err := (*kv).Delete(ctx, kvKey(name)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("node: ACME cache in NATS KV: %w", err)
		}
	}
	return c.disk.Delete(ctx, name)
}

// shareACMECache makes a clustered node's ACME cache the cluster's shared
// bucket. It does nothing on a single node or without ACME.
func (n *Node) shareACMECache(ctx context.Context) error {
	if n.acme == nil || n.cl == nil {
		return nil
	}
	var kv jetstream.KeyValue
	err := retryJetStream(ctx, func(ctx context.Context) (err error) {
		kv, err = n.cl.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      acmeBucket,
			Description: "Switchboard ACME account key and certificates",
			Replicas:    max(n.cfg.KVReplicas, 1),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("node: ACME cache bucket %s: %w", acmeBucket, err)
	}
	n.acme.kv.Store(&kv)
	return nil
}
