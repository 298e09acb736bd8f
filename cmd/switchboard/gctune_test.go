package main

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestServeTunesGC starts the binary and reads the GOGC its runtime
// applies from /metrics (go_gc_gogc_percent): raised above 100 by the
// default headroom on a fresh node's small heap, 100 with the headroom
// off, and the operator's value when GOGC is set.
func TestServeTunesGC(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		env   []string
		args  []string
		check func(gogc int) bool
		want  string
	}{
		{"default", nil, nil, func(g int) bool { return g > 100 }, "above 100"},
		{"off", nil, []string{"--gc-headroom-mib", "0"}, func(g int) bool { return g == 100 }, "100"},
		{"GOGC set", []string{"GOGC=150"}, nil, func(g int) bool { return g == 150 }, "150 (the environment's)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := servedGOGC(t, tt.env, tt.args...); !tt.check(got) {
				t.Errorf("go_gc_gogc_percent = %d; want %s", got, tt.want)
			}
		})
	}
	if _, errOut, err := sb(t, nil, "serve", "--gc-headroom-mib", "-1", "--db", filepath.Join(t.TempDir(), "x.db")); err == nil || !strings.Contains(errOut, "--gc-headroom-mib -1") {
		t.Errorf("a negative headroom: err %v, stderr %q; want it refused, naming the flag", err, errOut)
	}
}

// servedGOGC runs serve with env and args until it listens, and returns
// the GOGC its /metrics reports.
func servedGOGC(t *testing.T, env []string, args ...string) int {
	t.Helper()
	metricsAddr := strings.TrimPrefix(closedURL(t), "http://")
	startServe(t, env, append([]string{"--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "sb.db"), "--metrics-listen", metricsAddr}, args...)...)
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go_gc_gogc_percent (\d+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no go_gc_gogc_percent:\n%s", body)
	}
	gogc, _ := strconv.Atoi(string(m[1]))
	return gogc
}
