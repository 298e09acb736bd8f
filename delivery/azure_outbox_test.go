package delivery

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/upstream"
)

// azureHook is an upstream that records Azure-profile requests.
type azureHook struct {
	srv *httptest.Server

	mu     sync.Mutex // guards the fields below
	reqs   []azureHit
	status int
}

type azureHit struct {
	path string
	hdr  http.Header
	body string
}

func newAzureHook(t *testing.T, status int) *azureHook {
	h := &azureHook{status: status}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, azureHit{path: r.URL.Path, hdr: r.Header.Clone(), body: string(body)})
		status := h.status
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *azureHook) setStatus(s int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = s
}

func (h *azureHook) all() []azureHit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reqs)
}

func (h *azureHook) target(name, events string) Target {
	rules, err := ParseAzureRules("*", "*", events)
	if err != nil {
		panic(err)
	}
	return Target{Hub: "chat", Name: name, URLTemplate: h.srv.URL + "/{hub}/{category}/{event}", Timeout: 2 * time.Second,
		Azure: &AzureUpstream{Rules: rules, AccessKeys: []string{"key-one"}}}
}

func azureConnected(conn string) *upstream.Event {
	user := "ann"
	return &upstream.Event{Hub: "chat", ConnectionID: conn, UserID: &user, Event: upstream.EventConnected,
		Client: upstream.ClientInfo{Protocol: "json", Query: "?hub=chat&lang=en", Claims: json.RawMessage(`{"role":"admin"}`)}}
}

// TestAzureOutboxSurvivesRestart: an Azure-profile notification that
// failed is replayed from the store after a restart with everything its
// headers need, and the delivery log shows both attempts.
func TestAzureOutboxSurvivesRestart(t *testing.T) {
	t.Parallel()
	h := newAzureHook(t, http.StatusInternalServerError)
	db, _ := openStore(t)
	t.Cleanup(func() { db.Close() })
	cfg := fastRetry
	cfg.Store = db
	cfg.MinRetry, cfg.MaxRetry = time.Hour, time.Hour // one attempt, then wait
	cfg.Logger = testLogger(t)
	d1, err := NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d1.SetTargets([]Target{h.target("fn", "*")})
	d1.Notify(context.Background(), azureConnected("c1"))
	testutil.Eventually(t, waitFor, "first attempt", func() bool { return len(h.all()) == 1 })
	if err := d1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	h.setStatus(http.StatusOK)
	cfg.MinRetry, cfg.MaxRetry = 0, 0
	d2 := startDispatcher(t, cfg)
	d2.SetTargets([]Target{h.target("fn", "*")})
	testutil.Eventually(t, waitFor, "replay delivered", func() bool { return d2.Status().Outbox.Depth == 0 })
	reqs := h.all()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if r.path != "/chat/connections/connected" || r.body != `{"type":10}` || r.hdr.Get("X-ASRS-User-Id") != "ann" ||
			r.hdr.Get("X-ASRS-User-Claims") != "role: admin" || r.hdr.Get("X-ASRS-Client-Query") != "?hub=chat&lang=en" ||
			r.hdr.Get("X-ASRS-Signature") != AzureSignature([]string{"key-one"}, "c1") {
			t.Errorf("request %d: %s %s %v", i, r.path, r.body, r.hdr)
		}
	}
	log, ok := d2.DeliveryLog("chat", "fn")
	if !ok || len(log) != 1 || log[0].Status != http.StatusOK || log[0].Event != upstream.EventConnected {
		t.Errorf("delivery log after the replay: %+v", log)
	}
}

// TestAzureFirstMatchOnly: of several Azure-profile upstreams whose rules
// take a notification, only the first gets it, as in Azure; an upstream of
// the gateway's own profile still gets it as well.
func TestAzureFirstMatchOnly(t *testing.T) {
	t.Parallel()
	first, second, narrow := newAzureHook(t, http.StatusOK), newAzureHook(t, http.StatusOK), newAzureHook(t, http.StatusOK)
	own := newHook(t)
	d := startDispatcher(t, fastRetry)
	d.SetTargets([]Target{narrow.target("narrow", "disconnected"), first.target("first", "*"), own.target("chat", "own"), second.target("second", "connected")})
	d.Notify(context.Background(), azureConnected("c2"))
	testutil.Eventually(t, waitFor, "delivered", func() bool { return d.Status().Outbox.Depth == 0 })
	if n1, n2, nn, no := len(first.all()), len(second.all()), len(narrow.all()), len(own.all()); n1 != 1 || n2 != 0 || nn != 0 || no != 1 {
		t.Errorf("requests: first %d, second %d, narrow %d, own profile %d; want 1, 0, 0, 1", n1, n2, nn, no)
	}
}
