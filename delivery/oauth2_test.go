package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/upstream"
)

// tokenEndpoint is a real OAuth 2.0 token endpoint on loopback: it checks
// the client-credentials request and issues "tok-N" for expiresIn seconds,
// or answers with fail when set.
type tokenEndpoint struct {
	t       *testing.T
	srv     *httptest.Server
	issued  atomic.Int64
	arrived atomic.Int64 // requests received
	mu      sync.Mutex   // guards the fields below
	fail    func(w http.ResponseWriter) bool
	// release, when set, holds every answer until closed.
	release chan struct{}
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	e := &tokenEndpoint{t: t}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	e.arrived.Add(1)
	e.mu.Lock()
	fail, release := e.fail, e.release
	e.mu.Unlock()
	if release != nil {
		<-release
	}
	if fail != nil && fail(w) {
		return
	}
	id, secret, ok := r.BasicAuth()
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		e.t.Errorf("token request: %s %v", r.Method, err)
	}
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != "switchboard" || secret != "s3cret" || r.PostForm.Get("grant_type") != "client_credentials" ||
		r.PostForm.Get("scope") != "api://fn/.default" || r.PostForm.Get("audience") != "fn" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"unknown client or secret"}`)
		return
	}
	n := e.issued.Add(1)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "bearer", "expires_in": 120})
}

func (e *tokenEndpoint) setFail(fn func(w http.ResponseWriter) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail = fn
}

func (e *tokenEndpoint) creds() *ClientCredentials {
	return &ClientCredentials{TokenURL: e.srv.URL + "/token", ClientID: "switchboard", ClientSecret: "s3cret",
		Scopes: []string{"api://fn/.default"}, Params: map[string]string{"audience": "fn"}}
}

// TestOAuth2TokenReusedThenRefreshed: the upstream sees the token in
// Authorization beside the signature; one token serves calls until it
// nears its expiry (by the dispatcher's clock), then a new one is fetched;
// concurrent calls needing a token share one fetch.
func TestOAuth2TokenReusedThenRefreshed(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	ep := newTokenEndpoint(t)
	clk := testutil.NewClock(time.Now())
	d := startDispatcher(t, DispatcherConfig{Now: clk.Now})
	tg := h.target("chat", "fn")
	tg.OAuth2 = ep.creds()
	d.SetTargets([]Target{tg})
	ctx := context.Background()

	for i := range 3 {
		if _, err := d.Call(ctx, message("c1", "send")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	for i, x := range h.all() {
		if got := x.hdr.Get("Authorization"); got != "Bearer tok-1" || x.hdr.Get("Webhook-Signature") == "" {
			t.Errorf("request %d: Authorization %q, signature %q; want Bearer tok-1 and a signature", i, got, x.hdr.Get("Webhook-Signature"))
		}
	}
	if n := ep.issued.Load(); n != 1 {
		t.Fatalf("token endpoint issued %d tokens for 3 calls, want 1", n)
	}

	// 120 s tokens are refreshed 30 s before they expire.
	clk.Advance(89 * time.Second)
	if _, err := d.Call(ctx, message("c1", "send")); err != nil || ep.issued.Load() != 1 {
		t.Fatalf("at 89 s: %v, %d tokens; want the first still used", err, ep.issued.Load())
	}
	clk.Advance(2 * time.Second)
	release := make(chan struct{})
	ep.mu.Lock()
	ep.release = release
	ep.mu.Unlock()
	before := ep.arrived.Load()
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.Call(ctx, message("c2", "send")); err != nil {
				t.Errorf("concurrent call: %v", err)
			}
		}()
	}
	testutil.Eventually(t, waitFor, "a token request waiting", func() bool { return ep.arrived.Load() > before })
	close(release)
	wg.Wait()
	if n := ep.issued.Load(); n != 2 {
		t.Fatalf("token endpoint issued %d tokens, want 2 (five concurrent calls share one refresh)", n)
	}
	all := h.all()
	for _, x := range all[4:] {
		if got := x.hdr.Get("Authorization"); got != "Bearer tok-2" {
			t.Errorf("after the refresh: Authorization %q, want Bearer tok-2", got)
		}
	}
}

// TestOAuth2TokenEndpointFailures: no token, no request. An endpoint that
// is down fails the delivery as the upstream's failure (its breaker
// counts it), one that refuses the credentials as a misconfiguration (not
// counted); both say why in the delivery log and keep details from the
// client.
func TestOAuth2TokenEndpointFailures(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	ep := newTokenEndpoint(t)
	d := startDispatcher(t, DispatcherConfig{})
	tg := h.target("chat", "fn")
	tg.OAuth2 = ep.creds()
	tg.OAuth2.ClientSecret = "wrong"
	d.SetTargets([]Target{tg})
	ctx := context.Background()

	_, err := d.Call(ctx, message("c1", "send"))
	if err == nil || !strings.Contains(err.Error(), "refused the client credentials (401 invalid_client: unknown client or secret)") {
		t.Fatalf("bad credentials: err = %v", err)
	}
	if st := d.Status().Upstreams[0].Breaker; st.ConsecutiveFailures != 0 {
		t.Errorf("bad credentials counted against the breaker: %+v", st)
	}

	tg.OAuth2 = ep.creds() // fixed; the endpoint then goes down
	d.SetTargets([]Target{tg})
	ep.setFail(func(w http.ResponseWriter) bool {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return true
	})
	_, err = d.Call(ctx, message("c1", "send"))
	var ce interface{ ClientMessage() string }
	if err == nil || !strings.Contains(err.Error(), "token endpoint "+ep.srv.URL+"/token failed") {
		t.Fatalf("endpoint down: err = %v", err)
	}
	if !asClient(err, &ce) || ce.ClientMessage() != `upstream "fn" is unreachable: its OAuth token could not be obtained` {
		t.Errorf("client told %v", err)
	}
	if st := d.Status().Upstreams[0].Breaker; st.ConsecutiveFailures == 0 {
		t.Errorf("breaker = %+v, want the endpoint's failure counted", st)
	}
	if n := len(h.all()); n != 0 {
		t.Errorf("upstream got %d requests without a token, want 0", n)
	}
	log, _ := d.DeliveryLog("chat", "fn")
	if len(log) < 2 || !strings.Contains(log[0].Error, "not called: token endpoint "+ep.srv.URL+"/token failed: it answered 503 Service Unavailable: maintenance") ||
		!strings.Contains(log[len(log)-1].Error, "invalid_client") {
		t.Errorf("delivery log = %+v, want both reasons", log)
	}
	ep.setFail(nil)
	// New credentials reset the breaker, as a new URL or secret does.
	tg.OAuth2 = ep.creds()
	tg.OAuth2.Scopes = append(tg.OAuth2.Scopes, "extra")
	d.SetTargets([]Target{tg})
	if st := d.Status().Upstreams[0].Breaker; st.ConsecutiveFailures != 0 {
		t.Errorf("breaker after new credentials = %+v, want reset", st)
	}
	tg.OAuth2 = ep.creds()
	d.SetTargets([]Target{tg})
	if _, err := d.Call(ctx, message("c1", "send")); err != nil {
		t.Fatalf("after the endpoint is back: %v", err)
	}
}

func asClient(err error, target *interface{ ClientMessage() string }) bool {
	ce, ok := err.(interface{ ClientMessage() string })
	if ok {
		*target = ce
	}
	return ok
}

// TestOAuth2WithAzureProfile: an azure-signalr upstream (Azure's upstream
// format) gets the token too, beside X-ASRS-Signature: the pair Azure
// calls an upstream with ManagedIdentity auth.
func TestOAuth2WithAzureProfile(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Clone():
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	ep := newTokenEndpoint(t)
	rules, err := ParseAzureRules("*", "*", "*")
	if err != nil {
		t.Fatal(err)
	}
	d := startDispatcher(t, DispatcherConfig{})
	d.SetTargets([]Target{{Hub: "chat", Name: "fn", URLTemplate: srv.URL + "/{event}", Timeout: 2 * time.Second,
		Azure: &AzureUpstream{Rules: rules, AccessKeys: []string{"k"}}, OAuth2: ep.creds()}})
	send := &upstream.Event{Hub: "chat", ConnectionID: "c", Event: upstream.EventMessage, Target: "echo", Arguments: []byte(`["x"]`)}
	if _, err := d.Call(context.Background(), send); err != nil {
		t.Fatalf("call: %v", err)
	}
	h := <-got
	if h.Get("Authorization") != "Bearer tok-1" || h.Get("X-ASRS-Signature") == "" {
		t.Errorf("Authorization %q, X-ASRS-Signature %q; want the token and the signature", h.Get("Authorization"), h.Get("X-ASRS-Signature"))
	}
}
