package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIUpstreamOAuth2: `upstream add` registers the oauth2 setting with
// the client secret from a file or the environment, never the command
// line, and the gateway stores it (shown masked).
func TestCLIUpstreamOAuth2(t *testing.T) {
	t.Parallel()
	n := startTestNode(t)
	server := "http://" + n.Addr().String()
	env := []string{"SWITCHBOARD_SERVER=" + server, "SWITCHBOARD_ADMIN_KEY=" + n.AdminKey()}
	if _, errOut, err := sb(t, env, "hub", "add", "chat"); err != nil {
		t.Fatalf("hub add: %v %s", err, errOut)
	}
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"upstream", "add", "--hub", "chat", "--url", "http://127.0.0.1:9/fn", "--skip-validation",
		"--oauth2-token-url", "http://127.0.0.1:9/token", "--oauth2-client-id", "switchboard"}
	if out, errOut, err := sb(t, env, append(base, "fn", "--oauth2-client-secret-file", secretFile,
		"--oauth2-scope", "api://fn/.default", "--oauth2-param", "audience=fn")...); err != nil || !strings.Contains(out, "registered") {
		t.Fatalf("upstream add: %v %s %s", err, out, errOut)
	}
	if _, errOut, err := sb(t, append(env, "SWITCHBOARD_OAUTH2_CLIENT_SECRET=from-env"), append(base, "fn2")...); err != nil {
		t.Fatalf("upstream add with the secret in the environment: %v %s", err, errOut)
	}
	if _, errOut, err := sb(t, env, append(base, "fn3")...); err == nil || !strings.Contains(errOut, "needs the client secret") {
		t.Errorf("upstream add without a secret: %v %q", err, errOut)
	}
	if _, errOut, err := sb(t, env, "upstream", "add", "fn4", "--hub", "chat", "--url", "http://127.0.0.1:9/fn", "--oauth2-client-id", "x"); err == nil || !strings.Contains(errOut, "need --oauth2-token-url") {
		t.Errorf("oauth2 flags without a token URL: %v %q", err, errOut)
	}

	req, _ := http.NewRequest(http.MethodGet, server+"/admin/hubs/chat/upstreams/fn", nil)
	req.Header.Set("Authorization", "Bearer "+n.AdminKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		OAuth2 struct {
			TokenURL, ClientID, ClientSecret string
			Scopes                           []string
			Params                           map[string]string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	o := got.OAuth2
	if o.TokenURL != "http://127.0.0.1:9/token" || o.ClientID != "switchboard" || o.ClientSecret != "…" ||
		len(o.Scopes) != 1 || o.Params["audience"] != "fn" {
		t.Errorf("stored oauth2 = %+v", o)
	}
}
