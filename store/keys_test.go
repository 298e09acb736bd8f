package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
)

func TestEnsureKeys(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	db, _ := openTemp(t, WithClock(clk.Now))

	if _, err := db.AccessKeys(t.Context()); !errors.Is(err, ErrNotFound) {
		t.Errorf("AccessKeys before EnsureKeys: got %v, want ErrNotFound", err)
	}
	if _, err := db.AdminKeyHash(t.Context()); !errors.Is(err, ErrNotFound) {
		t.Errorf("AdminKeyHash before EnsureKeys: got %v, want ErrNotFound", err)
	}

	calls := 0
	newAccess := func() Key { calls++; return Key{ID: "k1", Secret: "s1"} }
	newAdmin := func() string { calls++; return "admin-1" }
	access, admin, created, err := db.EnsureKeys(t.Context(), newAccess, newAdmin)
	if err != nil {
		t.Fatal(err)
	}
	want := []Key{{ID: "k1", Secret: "s1", CreatedAt: clk.Now()}}
	if !created || admin != "admin-1" || !keysEqual(access, want) {
		t.Errorf("first EnsureKeys: got %v %q created=%v, want %v admin-1 true", access, admin, created, want)
	}

	access2, admin2, created2, err := db.EnsureKeys(t.Context(), newAccess, newAdmin)
	if err != nil {
		t.Fatal(err)
	}
	// The admin key is shown once: the store keeps only its hash.
	if created2 || calls != 2 || admin2 != "" || !keysEqual(access2, access) {
		t.Errorf("second EnsureKeys: got %v %q created=%v generator calls=%d, want the first keys, no admin key, false, 2", access2, admin2, created2, calls)
	}
	if got, err := db.AdminKeyHash(t.Context()); err != nil || !AdminKeyMatches(got, admin) || AdminKeyMatches(got, "admin-2") {
		t.Errorf("AdminKeyHash: got %q %v, want the hash of %q", got, err, admin)
	}
}

func TestEnsureKeysRefusesEmptyGenerated(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	_, _, _, err := db.EnsureKeys(t.Context(), func() Key { return Key{ID: "k1", Secret: "s1"} }, func() string { return "" })
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("EnsureKeys with empty admin key: got %v, want ErrInvalid", err)
	}
	// The transaction rolled back: the access key was not saved either.
	if _, err := db.AccessKeys(t.Context()); !errors.Is(err, ErrNotFound) {
		t.Errorf("AccessKeys after failed EnsureKeys: got %v, want ErrNotFound", err)
	}
}

func keysEqual(a, b []Key) bool {
	return slices.EqualFunc(a, b, func(x, y Key) bool {
		return x.ID == y.ID && x.Secret == y.Secret && x.CreatedAt.Equal(y.CreatedAt)
	})
}

func TestSetAccessKeys(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rotated := []Key{{ID: "k2", Secret: "s2", CreatedAt: now}, {ID: "k1", Secret: "s1", CreatedAt: now.Add(-time.Hour)}}

	tests := []struct {
		name    string
		keys    []Key
		wantErr error
	}{
		{name: "rotate", keys: rotated},
		{name: "empty list", keys: nil, wantErr: ErrInvalid},
		{name: "empty secret", keys: []Key{{ID: "k3"}}, wantErr: ErrInvalid},
		{name: "empty id", keys: []Key{{Secret: "s3"}}, wantErr: ErrInvalid},
		{name: "duplicate id", keys: []Key{{ID: "k3", Secret: "a"}, {ID: "k3", Secret: "b"}}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := db.SetAccessKeys(t.Context(), tt.keys); !errors.Is(err, tt.wantErr) {
				t.Fatalf("SetAccessKeys: got %v, want %v", err, tt.wantErr)
			}
			// Refused lists leave the last good one in place.
			got, err := db.AccessKeys(t.Context())
			if err != nil || !keysEqual(got, rotated) {
				t.Errorf("AccessKeys: got %v %v, want %v", got, err, rotated)
			}
		})
	}
}
