package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// oauthClock is the wall clock moved ahead by what a test adds: the
// node's delivery clock, so a token's expiry can pass without waiting.
type oauthClock struct{ ahead atomic.Int64 }

func (c *oauthClock) Now() time.Time          { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *oauthClock) advance(d time.Duration) { c.ahead.Add(int64(d)) }

func bearerOf(r *received) string { return r.Header.Get("Authorization") }

// oauthTokenServer is a real OAuth 2.0 token endpoint issuing
// upstream-token-N, valid an hour, to client switchboard.
func oauthTokenServer(t *testing.T, issued *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if r.ParseForm() != nil || id != "switchboard" || secret != "client-s3cret" || r.PostForm.Get("grant_type") != "client_credentials" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		n := issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"upstream-token-%d","token_type":"Bearer","expires_in":3600}`, n)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestUpstreamOAuth2: an upstream registered with OAuth2 client
// credentials sees the token of a real token endpoint in Authorization,
// beside a valid signature; the token is reused until it nears its expiry,
// then refreshed; with the token endpoint down, invocations fail with a
// clear completion error and notifications with the reason in the
// delivery log, and the upstream gets nothing. The admin API never shows
// the client secret.
func TestUpstreamOAuth2(t *testing.T) {
	var issued atomic.Int64
	tokens := oauthTokenServer(t, &issued)
	clk := &oauthClock{}
	g := startNode(t, func(c *node.Config) { c.Delivery.Now = clk.Now })
	g.createHub("chat", false)
	rec := newRecorder(t)
	data := g.admin(http.MethodPost, "/admin/hubs/chat/upstreams", map[string]any{
		"name": "fn", "urlTemplate": rec.URL() + "/{event}", "events": []string{"connected", "message:*"}, "timeout": "2s", "skipValidation": true,
		"oauth2": map[string]any{"tokenURL": tokens.URL + "/token", "clientID": "switchboard", "clientSecret": "client-s3cret", "scopes": []string{"api://fn/.default"}},
	}, http.StatusCreated)
	var created struct {
		Secrets []string
		OAuth2  struct{ ClientID, ClientSecret string }
	}
	if err := json.Unmarshal(data, &created); err != nil || created.OAuth2.ClientSecret != "…" || created.OAuth2.ClientID != "switchboard" {
		t.Fatalf("created upstream shows oauth2 %+v (%v); want the client secret masked", created.OAuth2, err)
	}
	rec.mu.Lock()
	rec.secret = created.Secrets[0]
	rec.mu.Unlock()
	if got := g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/fn", nil, http.StatusOK); strings.Contains(string(got), "client-s3cret") {
		t.Fatalf("GET upstream shows the client secret: %s", got)
	}

	rec.setReply(func(ev *upstream.Event) (int, any) { return http.StatusOK, map[string]any{"result": "ok"} })
	c := g.dial("chat", "ana", nil)
	connected := rec.waitEvent(isEvent("connected", c.ConnectionID()))
	invoke := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_, err := c.Invoke(ctx, "Echo", "hi")
		return err
	}
	for range 3 {
		if err := invoke(); err != nil {
			t.Fatalf("invoke: %v", err)
		}
	}
	events := rec.all()
	if len(events) != 4 {
		t.Fatalf("upstream got %d events, want connected and 3 messages", len(events))
	}
	for _, e := range events {
		if got := bearerOf(&e); got != "Bearer upstream-token-1" {
			t.Errorf("%s event: Authorization %q, want the first token", e.Event.Event, got)
		}
	}
	if bearerOf(connected) == "" || issued.Load() != 1 {
		t.Fatalf("token endpoint issued %d tokens for 4 requests, want 1", issued.Load())
	}

	clk.advance(time.Hour) // past the token's expiry
	if err := invoke(); err != nil {
		t.Fatalf("invoke after expiry: %v", err)
	}
	if last := rec.all()[4]; bearerOf(&last) != "Bearer upstream-token-2" || issued.Load() != 2 {
		t.Fatalf("after expiry: Authorization %q, %d tokens issued; want a second token", bearerOf(&last), issued.Load())
	}

	// A PUT without the client secret keeps the stored one: new scopes
	// make a new token, which the endpoint issues only for the right
	// secret.
	g.admin(http.MethodPut, "/admin/hubs/chat/upstreams/fn", map[string]any{
		"urlTemplate": rec.URL() + "/{event}", "events": []string{"connected", "message:*"}, "timeout": "2s", "skipValidation": true,
		"oauth2": map[string]any{"tokenURL": tokens.URL + "/token", "clientID": "switchboard", "scopes": []string{"api://fn/other"}},
	}, http.StatusOK)
	if err := invoke(); err != nil || issued.Load() != 3 {
		t.Fatalf("after a PUT keeping the secret: %v, %d tokens issued, want 3", err, issued.Load())
	}
	status, body := do(t, http.MethodPost, g.url+"/admin/hubs/chat/upstreams", g.adminKey, map[string]any{
		"name": "fn2", "urlTemplate": rec.URL(), "skipValidation": true,
		"oauth2": map[string]any{"tokenURL": tokens.URL + "/token", "clientID": "switchboard"},
	})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "oauth2.clientSecret is required") {
		t.Errorf("new upstream without a client secret: %d %s", status, body)
	}

	tokens.Close()
	clk.advance(time.Hour)
	err := invoke()
	if err == nil || !strings.Contains(err.Error(), `upstream "fn" is unreachable: its OAuth token could not be obtained`) {
		t.Fatalf("invoke with the token endpoint down: %v", err)
	}
	c2 := g.dial("chat", "bo", nil)
	var log []struct{ Event, ConnectionID, Error string }
	testutil.Eventually(t, waitFor, "the connected notification's failure in the delivery log", func() bool {
		log = nil
		json.Unmarshal(g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/fn/log", nil, http.StatusOK), &log)
		for _, e := range log {
			if e.Event == "connected" && e.ConnectionID == c2.ConnectionID() &&
				strings.Contains(e.Error, `upstream "fn" not called: token endpoint `+tokens.URL+"/token failed") {
				return true
			}
		}
		return false
	})
	if n := len(rec.all()); n != 6 {
		t.Errorf("upstream got %d requests, want none without a token (6 before)", n)
	}
}
