package certfile

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// replace puts src's files in place of dst's by rename, as certbot and
// Kubernetes do: a handshake never reads a half-written file.
func replace(t *testing.T, src, dst testutil.Issued) {
	t.Helper()
	for _, p := range [][2]string{{src.CertFile, dst.CertFile}, {src.KeyFile, dst.KeyFile}} {
		if err := os.Rename(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReloaderFollowsReplacedFiles(t *testing.T) {
	ca := testutil.NewCA(t, "test CA")
	dir, spare := t.TempDir(), t.TempDir()
	first := ca.Issue(dir, "site", "localhost")
	var logs bytes.Buffer
	r, err := New(first.CertFile, first.KeyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Certificate().Leaf.SerialNumber; got.Cmp(first.Cert.Leaf.SerialNumber) != 0 {
		t.Fatalf("serial %s, want the first certificate's %s", got, first.Cert.Leaf.SerialNumber)
	}

	second := ca.Issue(spare, "site", "localhost")
	replace(t, second, first)
	if got := r.Certificate().Leaf.SerialNumber; got.Cmp(second.Cert.Leaf.SerialNumber) != 0 {
		t.Fatalf("after replacing the files: serial %s, want the second certificate's %s", got, second.Cert.Leaf.SerialNumber)
	}

	// A key that does not match its certificate (the key of a renewal
	// written before its certificate) keeps the certificate in use.
	third := ca.Issue(spare, "site", "localhost")
	if err := os.Rename(third.KeyFile, first.KeyFile); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := r.Certificate().Leaf.SerialNumber; got.Cmp(second.Cert.Leaf.SerialNumber) != 0 {
			t.Fatalf("with a mismatched pair on disk: serial %s, want the second certificate's %s still", got, second.Cert.Leaf.SerialNumber)
		}
	}
	if n := strings.Count(logs.String(), "do not load"); n != 1 {
		t.Errorf("the bad pair was logged %d times, want once:\n%s", n, logs.String())
	}
	if err := os.Rename(third.CertFile, first.CertFile); err != nil {
		t.Fatal(err)
	}
	if got := r.Certificate().Leaf.SerialNumber; got.Cmp(third.Cert.Leaf.SerialNumber) != 0 {
		t.Fatalf("once the pair matches again: serial %s, want the third certificate's %s", got, third.Cert.Leaf.SerialNumber)
	}
}

func TestNewRefusesWhatDoesNotLoad(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, cert, key string }{
		{"no key file named", junk, ""},
		{"missing files", filepath.Join(dir, "nope.pem"), filepath.Join(dir, "nope-key.pem")},
		{"not PEM", junk, junk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cert, tc.key, nil); err == nil {
				t.Fatal("New succeeded; want an error")
			}
		})
	}
	if _, err := Pool(junk); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("Pool of a junk file: %v; want it to say it holds no PEM certificate", err)
	}
}
