package metrics

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDocsListEveryMetric: docs/operations.md lists exactly the metrics
// the registry can expose, whether or not the traffic so far produced a
// sample of each (the e2e tests check samples, labels and values).
func TestDocsListEveryMetric(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(switchboard_[a-z_]+)` \\|")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		documented = append(documented, m[1])
	}

	m := New()
	ch := make(chan *prometheus.Desc, 100)
	for _, c := range []prometheus.Collector{m.calls, m.duration, m.src} {
		c.Describe(ch)
	}
	close(ch)
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	var exposed []string
	for d := range ch {
		n := name.FindStringSubmatch(d.String())
		if n == nil {
			t.Fatalf("no name in %s", d)
		}
		exposed = append(exposed, n[1])
	}
	slices.Sort(documented)
	slices.Sort(exposed)
	if !slices.Equal(documented, exposed) {
		t.Errorf("docs/operations.md lists\n  %s\nthe registry exposes\n  %s", strings.Join(documented, "\n  "), strings.Join(exposed, "\n  "))
	}
}
