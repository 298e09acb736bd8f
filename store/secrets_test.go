package store

import (
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestSealedValuesStayInTheirRecord(t *testing.T) {
	t.Parallel()
	k := NewSecretsKey()
	s := newSealer(SecretsKeys{Current: &k})
	sealed := s.seal("whsec_x", upstreamAAD("chat", "a"))
	if !isSealed(sealed) || strings.Contains(sealed, "whsec_x") {
		t.Fatalf("sealed = %q", sealed)
	}
	if got, err := s.open(sealed, upstreamAAD("chat", "a")); err != nil || got != "whsec_x" {
		t.Fatalf("open = %q, %v", got, err)
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	for name, tt := range map[string]struct{ value, aad string }{
		"moved to another upstream": {sealed, upstreamAAD("chat", "b")},
		"moved to an access key":    {sealed, accessKeyAAD("a")},
		"altered":                   {tampered, upstreamAAD("chat", "a")},
		"malformed":                 {"sbsealed:v1:nokey", upstreamAAD("chat", "a")},
	} {
		if _, err := s.open(tt.value, tt.aad); !errors.Is(err, ErrSecretsKey) {
			t.Errorf("%s: open = %v, want ErrSecretsKey", name, err)
		}
	}
	// Two seals of one secret differ (random nonces).
	if a, b := s.seal("whsec_x", "a"), s.seal("whsec_x", "a"); a == b {
		t.Error("sealing is deterministic")
	}
}

func TestParseSecretsKey(t *testing.T) {
	t.Parallel()
	k := NewSecretsKey()
	got, err := ParseSecretsKey(" " + k.Encode() + "\n")
	if err != nil || got != k {
		t.Fatalf("ParseSecretsKey(Encode()) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "short", k.Encode()[:20], k.Encode() + "AAAA"} {
		if _, err := ParseSecretsKey(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSecretsKey(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if k.ID() == NewSecretsKey().ID() || len(k.ID()) != 8 {
		t.Errorf("key ids %q: want 8 hex digits telling keys apart", k.ID())
	}
}

// TestResealHashesLegacyAdminKey: a store written before the admin key was
// hashed holds it in clear; it keeps working, and Reseal replaces it with
// its hash.
func TestResealHashesLegacyAdminKey(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket([]byte(bucketKeys)), keyAdmin, "sbadm_legacy")
	}); err != nil {
		t.Fatal(err)
	}
	h, err := db.AdminKeyHash(t.Context())
	if err != nil || !AdminKeyMatches(h, "sbadm_legacy") {
		t.Fatalf("legacy admin key: hash %q, %v; want it to match", h, err)
	}
	if n, err := db.Reseal(t.Context()); err != nil || n != 1 {
		t.Fatalf("Reseal = %d, %v; want 1 record", n, err)
	}
	var stored string
	if err := db.bolt.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket([]byte(bucketKeys)), keyAdmin, &stored) }); err != nil {
		t.Fatal(err)
	}
	if stored != HashAdminKey("sbadm_legacy") {
		t.Errorf("stored admin key after Reseal = %q, want its hash", stored)
	}
	if h, _ := db.AdminKeyHash(t.Context()); !AdminKeyMatches(h, "sbadm_legacy") || AdminKeyMatches(h, "other") {
		t.Errorf("admin key after Reseal no longer matches")
	}
}
