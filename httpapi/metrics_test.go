package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRESTCountsInventedMethodsAsOther: REST calls are counted before
// their credentials are checked, by method and route. A method is the
// client's own string, so methods HTTP does not define are counted under
// one label, "OTHER", rather than each adding a counter (and a Prometheus
// series) for as long as the node runs.
func TestRESTCountsInventedMethodsAsOther(t *testing.T) {
	srv, _, _ := negotiateServer(t)
	const invented = 50
	for i := range invented {
		req := httptest.NewRequest("M"+fmt.Sprint(i)+strings.Repeat("X", 1000), "/api/hubs/chat/:send", nil)
		srv.ServeHTTP(httptest.NewRecorder(), req)
	}
	req := httptest.NewRequest(http.MethodPost, "/api/hubs/chat/:send", nil) // no token: 401
	srv.ServeHTTP(httptest.NewRecorder(), req)

	var other int64
	for _, st := range srv.RESTStats() {
		op, _, _ := strings.Cut(st.Operation, " ")
		switch op {
		case "OTHER":
			other += st.Count
		case http.MethodPost:
		default:
			t.Errorf("REST calls counted under the client's method: %+v", st)
		}
	}
	if other != invented {
		t.Errorf("%d calls counted under OTHER, want %d", other, invented)
	}
	if n := len(srv.RESTStats()); n > 2 {
		t.Errorf("%d counters after %d invented methods and one POST, want at most 2: %+v", n, invented, srv.RESTStats())
	}
}
