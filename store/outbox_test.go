package store

import (
	"errors"
	"slices"
	"testing"
)

type outboxEntry struct {
	seq uint64
	val string
}

func loadOutbox(t *testing.T, db *DB) []outboxEntry {
	t.Helper()
	var got []outboxEntry
	if err := db.OutboxLoad(func(seq uint64, v []byte) error {
		got = append(got, outboxEntry{seq, string(v)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestOutboxCommitAndReplay(t *testing.T) {
	t.Parallel()
	db, path := openTemp(t)
	seqs, err := db.OutboxCommit([][]byte{[]byte("a"), []byte("b"), []byte("c")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(seqs) || len(seqs) != 3 || seqs[0] == 0 {
		t.Fatalf("seqs = %v, want three increasing non-zero numbers", seqs)
	}
	// One transaction appends and deletes; deleting a missing number is fine.
	more, err := db.OutboxCommit([][]byte{[]byte("d")}, []uint64{seqs[1], 999})
	if err != nil {
		t.Fatal(err)
	}
	if more[0] <= seqs[2] {
		t.Errorf("next seq %d, want > %d", more[0], seqs[2])
	}
	want := []outboxEntry{{seqs[0], "a"}, {seqs[2], "c"}, {more[0], "d"}}
	if got := loadOutbox(t, db); !slices.Equal(got, want) {
		t.Errorf("outbox = %v, want %v", got, want)
	}

	// Survives a reopen, in order, and numbers keep growing.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got := loadOutbox(t, db2); !slices.Equal(got, want) {
		t.Errorf("after reopen: outbox = %v, want %v", got, want)
	}
	last, err := db2.OutboxCommit([][]byte{[]byte("e")}, nil)
	if err != nil || last[0] <= more[0] {
		t.Errorf("seq after reopen = %v (%v), want > %d", last, err, more[0])
	}
}

func TestOutboxLoadStopsOnError(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	if _, err := db.OutboxCommit([][]byte{[]byte("a"), []byte("b")}, nil); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	n := 0
	err := db.OutboxLoad(func(uint64, []byte) error { n++; return boom })
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("got %v after %d calls, want boom after 1", err, n)
	}
}

func TestSetUpstreamDisabled(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	mustCreateHub(t, db, "chat")
	if _, err := db.CreateUpstream(t.Context(), Upstream{Hub: "chat", Name: "fn", URLTemplate: "http://h/", Secrets: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		disabled   bool
		reason     string
		wantReason string
	}{
		{"disable", true, "answered 410", "answered 410"},
		{"enable clears the reason", false, "ignored", ""},
	}
	for _, tt := range tests {
		if err := db.SetUpstreamDisabled(t.Context(), "chat", "fn", tt.disabled, tt.reason); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		u, err := db.Upstream(t.Context(), "chat", "fn")
		if err != nil || u.Disabled != tt.disabled || u.DisabledReason != tt.wantReason || u.URLTemplate != "http://h/" {
			t.Errorf("%s: got %+v %v, want disabled=%v reason %q and the rest kept", tt.name, u, err, tt.disabled, tt.wantReason)
		}
	}
	// Saving the upstream again enables it.
	if err := db.SetUpstreamDisabled(t.Context(), "chat", "fn", true, "gone"); err != nil {
		t.Fatal(err)
	}
	if u, err := db.PutUpstream(t.Context(), Upstream{Hub: "chat", Name: "fn", URLTemplate: "http://h/", Secrets: []string{"s"}}); err != nil || u.Disabled {
		t.Errorf("after PutUpstream: %+v %v, want enabled", u, err)
	}
	if err := db.SetUpstreamDisabled(t.Context(), "chat", "nope", true, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing upstream: got %v, want ErrNotFound", err)
	}
}
