package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/identity"
	"github.com/switchboard-gw/switchboard/internal/oidctest"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/rest"
)

// oidcNode starts a node trusting issuer with the grants the identity
// tests use, and creates hub "chat".
func oidcNode(t *testing.T, issuer *oidctest.Issuer) *gw {
	t.Helper()
	v, err := identity.NewVerifier(identity.Policy{Issuers: []identity.Issuer{{
		Issuer:    issuer.URL(),
		Audiences: []string{"switchboard"},
		Grants: []identity.Grant{
			{Subject: "chat-api", Hubs: []string{"chat"},
				Operations: []identity.Operation{identity.OpSend, identity.OpGroups, identity.OpGenerateToken}},
			{Subject: "reader", Hubs: []string{"chat"}, Operations: []identity.Operation{identity.OpRead}},
			{Claims: map[string]string{"role": "ops"}, Hubs: []string{"*"}, Operations: []identity.Operation{identity.OpAdmin}},
		},
	}}}, identity.Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := startNode(t, func(c *node.Config) { c.Identities = v })
	g.createHub("chat", false)
	return g
}

// oidcRESTError is the Azure-shaped error body of the REST API.
type oidcRESTError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func expectRESTError(t *testing.T, name string, status int, body []byte, wantStatus int, wantCode, wantText string) {
	t.Helper()
	var e oidcRESTError
	if status != wantStatus || json.Unmarshal(body, &e) != nil || e.Code != wantCode || !strings.Contains(e.Message, wantText) {
		t.Errorf("%s: got %d %s, want %d with code %s saying %q", name, status, body, wantStatus, wantCode, wantText)
	}
}

// TestOIDCRest: a token of a trusted issuer mints a client token that a Go
// client connects with, pushes to it through REST and runs a batch it is
// allowed; each kind of bad token is 401 and a caller without the grant
// 403, in the REST API's error shape; the admin API takes a token with the
// admin grant and refuses one without.
func TestOIDCRest(t *testing.T) {
	issuer := oidctest.New("RS256", t.Cleanup)
	untrusted := oidctest.New("ES256", t.Cleanup)
	g := oidcNode(t, issuer)
	app := issuer.Token(map[string]any{"sub": "chat-api", "aud": "switchboard"})

	status, body := do(t, http.MethodPost, g.url+"/api/hubs/chat/:generateToken?userId=ana", app, nil)
	var minted struct{ Token, URL string }
	if status != http.StatusOK || json.Unmarshal(body, &minted) != nil || minted.Token == "" {
		t.Fatalf(":generateToken with an OIDC token: %d %s", status, body)
	}
	box := newInbox()
	c := dialWithToken(t, minted.URL, minted.Token, map[string]func([]json.RawMessage){"news": box.handler()})
	status, body = do(t, http.MethodPost, g.url+"/api/hubs/chat/users/ana/:send", app, map[string]any{"target": "news", "arguments": []any{"keyless"}})
	if status != http.StatusAccepted {
		t.Fatalf(":send with an OIDC token: %d %s", status, body)
	}
	if got := str(t, box.next(t)[0]); got != "keyless" {
		t.Fatalf("client got %q, want keyless", got)
	}
	status, body = do(t, http.MethodPost, g.url+"/api/hubs/chat/:actions", app, []map[string]any{
		{"action": "addToGroup", "group": "room", "connectionId": c.ConnectionID()},
		{"action": "sendToGroup", "group": "room", "target": "news", "arguments": []any{"to the room"}},
	})
	if status != http.StatusOK {
		t.Fatalf(":actions with an OIDC token: %d %s", status, body)
	}
	if got := str(t, box.next(t)[0]); got != "to the room" {
		t.Fatalf("client got %q, want the group message", got)
	}

	send := func(token string) (int, []byte) {
		return do(t, http.MethodPost, g.url+"/api/hubs/chat/:send", token, map[string]any{"target": "news", "arguments": []any{"x"}})
	}
	for _, tc := range []struct{ name, token, want string }{
		{"untrusted issuer", untrusted.Token(map[string]any{"sub": "chat-api", "aud": "switchboard"}), "not trusted"},
		{"wrong audience", issuer.Token(map[string]any{"sub": "chat-api", "aud": "other-service"}), "audience"},
		{"expired", issuer.Token(map[string]any{"sub": "chat-api", "aud": "switchboard", "exp": time.Now().Add(-time.Minute).Unix()}), "expired"},
		{"key not in the JWKS", issuer.UnpublishedToken(map[string]any{"sub": "chat-api", "aud": "switchboard"}), "signature"},
	} {
		status, body := send(tc.token)
		expectRESTError(t, tc.name, status, body, http.StatusUnauthorized, "Error.Unauthorized", tc.want)
	}

	reader := issuer.Token(map[string]any{"sub": "reader", "aud": "switchboard"})
	status, body = send(reader)
	expectRESTError(t, "reader sends", status, body, http.StatusForbidden, "Error.Forbidden", `may not send on hub "chat"`)
	if status, body := do(t, http.MethodHead, g.url+"/api/hubs/chat/users/ana", reader, nil); status != http.StatusOK {
		t.Errorf("reader's existence check: %d %s", status, body)
	}
	status, body = do(t, http.MethodPost, g.url+"/api/hubs/other/:send", app, map[string]any{"target": "news", "arguments": []any{"x"}})
	expectRESTError(t, "chat-api on another hub", status, body, http.StatusForbidden, "Error.Forbidden", `hub "other"`)
	status, body = do(t, http.MethodDelete, g.url+"/api/hubs/chat/connections/"+c.ConnectionID(), app, nil)
	expectRESTError(t, "chat-api closes", status, body, http.StatusForbidden, "Error.Forbidden", "may not close")
	status, body = do(t, http.MethodPost, g.url+"/api/hubs/chat/:actions", app, []map[string]any{
		{"action": "broadcast", "target": "news", "arguments": []any{"never"}},
		{"action": "closeConnection", "connectionId": c.ConnectionID()},
	})
	expectRESTError(t, "batch with a forbidden action", status, body, http.StatusForbidden, "Error.Forbidden", "action 1 (closeConnection)")

	// Access keys work as before beside OIDC.
	if status, body := do(t, http.MethodPost, g.url+"/api/hubs/chat/users/ana/:send", g.restToken(g.url+"/api/hubs/chat/users/ana/:send"),
		map[string]any{"target": "news", "arguments": []any{"with a key"}}); status != http.StatusAccepted {
		t.Fatalf("access-key :send beside OIDC: %d %s", status, body)
	}
	if got := str(t, box.next(t)[0]); got != "with a key" {
		t.Fatalf("client got %q; the forbidden batch must not have run", got)
	}

	ops := issuer.Token(map[string]any{"sub": "someone", "aud": "switchboard", "role": "ops"})
	if status, body := do(t, http.MethodGet, g.url+"/admin/hubs", ops, nil); status != http.StatusOK {
		t.Errorf("admin API with the admin grant: %d %s", status, body)
	}
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"admin API without the admin grant", app, http.StatusForbidden},
		{"admin API with an untrusted token", untrusted.Token(map[string]any{"sub": "x", "aud": "switchboard", "role": "ops"}), http.StatusUnauthorized},
	} {
		status, body := do(t, http.MethodGet, g.url+"/admin/hubs", tc.token, nil)
		var e struct{ Error string }
		if status != tc.want || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s: got %d %s, want %d with an error", tc.name, status, body, tc.want)
		}
	}
}

// TestOIDCKeyRotation: after the issuer rotates its key, a token of the
// new key is accepted without a restart and one of the retired key is 401.
func TestOIDCKeyRotation(t *testing.T) {
	issuer := oidctest.New("EdDSA", t.Cleanup)
	g := oidcNode(t, issuer)
	claims := map[string]any{"sub": "chat-api", "aud": "switchboard"}
	old := issuer.Token(claims)
	send := func(token string) (int, []byte) {
		return do(t, http.MethodPost, g.url+"/api/hubs/chat/:send", token, map[string]any{"target": "news", "arguments": []any{"x"}})
	}
	if status, body := send(old); status != http.StatusAccepted {
		t.Fatalf("before rotation: %d %s", status, body)
	}
	issuer.Rotate()
	if status, body := send(issuer.Token(claims)); status != http.StatusAccepted {
		t.Fatalf("token of the rotated key: %d %s", status, body)
	}
	status, body := send(old)
	expectRESTError(t, "token of the retired key", status, body, http.StatusUnauthorized, "Error.Unauthorized", "signature")
}

// TestOIDCInterop runs test/interop/oidc/keyless-app.mjs: an app holding
// only an OIDC token mints a client token with it, connects the stock
// @microsoft/signalr client, and pushes to it through REST.
func TestOIDCInterop(t *testing.T) {
	root := repoRoot(t)
	requireNodeModules(t, filepath.Join(root, "test", "interop"), "npm ci --prefix test/interop")
	issuer := oidctest.New("ES256", t.Cleanup)
	g := oidcNode(t, issuer)
	tok := issuer.Token(map[string]any{"sub": "chat-api", "aud": "switchboard"})
	runNode(t, root, []string{"GATEWAY_URL=" + g.url, "HUB=chat", "OIDC_TOKEN=" + tok}, "test/interop/oidc/keyless-app.mjs")
}

// dialWithToken connects a Go client to a client URL with a token, as a stock
// client does with :generateToken's answer.
func dialWithToken(t *testing.T, rawURL, token string, handlers map[string]func([]json.RawMessage)) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := client.Dial(ctx, rawURL, &client.Options{Handlers: handlers,
		AccessToken: func(context.Context) (string, error) { return token, nil }})
	if err != nil {
		t.Fatalf("dial %s: %v", rawURL, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestOIDCPolicyFlag runs the real binary with --oidc-policy: with no key
// at all, a token of the trusted issuer creates a hub through the admin
// API and pushes through REST; a policy that does not load stops the start
// with a message naming the fault.
func TestOIDCPolicyFlag(t *testing.T) {
	issuer := oidctest.New("RS256", t.Cleanup)
	dir := t.TempDir()
	policy := filepath.Join(dir, "oidc.yaml")
	writeOIDCPolicy(t, policy, `issuers:
  - issuer: `+issuer.URL()+`
    audiences: [switchboard]
    grants:
      - subject: deployer
        hubs: ["*"]
        operations: [admin]
      - subject: chat-api
        hubs: [chat]
        operations: [send]
`)
	port := freePort(t)
	p := startProc(t, "serve", "serve", "--listen", "127.0.0.1:"+port, "--db", filepath.Join(dir, "n.db"), "--oidc-policy", policy)
	p.url = "http://127.0.0.1:" + port
	testutil.Eventually(t, waitFor, "the node is ready", func() bool { return p.readyz() == "ready" })

	deployer := issuer.Token(map[string]any{"sub": "deployer", "aud": "switchboard"})
	if status, body := do(t, http.MethodPost, p.url+"/admin/hubs", deployer, map[string]any{"name": "chat"}); status != http.StatusCreated {
		t.Fatalf("create a hub with an OIDC token: %d %s", status, body)
	}
	app := issuer.Token(map[string]any{"sub": "chat-api", "aud": "switchboard"})
	if status, body := do(t, http.MethodPost, p.url+"/api/hubs/chat/:send", app, map[string]any{"target": "news", "arguments": []any{1}}); status != http.StatusAccepted {
		t.Fatalf(":send with an OIDC token: %d %s", status, body)
	}

	bad := filepath.Join(dir, "bad.yaml")
	writeOIDCPolicy(t, bad, "issuers:\n  - issuer: http://idp.example.com\n    audiences: [x]\n")
	q := startProc(t, "bad", "serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(dir, "bad.db"), "--oidc-policy", bad)
	if err := q.wait(15 * time.Second); err == nil {
		t.Fatal("serve with a bad policy exited 0")
	}
	if out := q.out.String(); !strings.Contains(out, "--oidc-policy") || !strings.Contains(out, "loopback only") {
		t.Errorf("output %q does not name the flag and the fault", out)
	}
}

func writeOIDCPolicy(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOIDCRestClient: the Go REST client built with NewKeyless, holding
// only an OIDC token, negotiates for a Go client and pushes to it; a
// token the gateway refuses comes back as a *rest.Error with its status.
func TestOIDCRestClient(t *testing.T) {
	issuer := oidctest.New("ES256", t.Cleanup)
	g := oidcNode(t, issuer)
	tok := issuer.Token(map[string]any{"sub": "chat-api", "aud": "switchboard"})
	rc, err := rest.NewKeyless(g.url, func(context.Context) (string, error) { return tok, nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	chat := rc.Hub("chat")
	resp, err := chat.Negotiate(ctx, "cy", time.Hour)
	if err != nil {
		t.Fatalf("negotiate with an OIDC token: %v", err)
	}
	box := newInbox()
	dialWithToken(t, resp.URL, resp.AccessToken, map[string]func([]json.RawMessage){"news": box.handler()})
	if err := chat.User("cy").Send(ctx, "news", "from the keyless Go client"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := str(t, box.next(t)[0]); got != "from the keyless Go client" {
		t.Fatalf("client got %q", got)
	}
	var re *rest.Error
	if err := chat.CloseAll(ctx, "bye"); !errors.As(err, &re) || re.Status != http.StatusForbidden || re.Code != "Error.Forbidden" {
		t.Errorf("close without the grant: got %v, want a 403 Error.Forbidden", err)
	}
	if _, err := rest.NewKeyless("not a url", func(context.Context) (string, error) { return tok, nil }); err == nil {
		t.Error("NewKeyless took an endpoint that is not a URL")
	}
}
