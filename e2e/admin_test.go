package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/upstream"
)

type upstreamAnswer struct {
	Name     string   `json:"name"`
	Secrets  []string `json:"secrets"`
	Warnings []string `json:"warnings"`
}

type secretsAnswer struct {
	Secrets []string `json:"secrets"`
	Dropped int      `json:"dropped"`
}

// TestUpstreamSecretsMaskedRevealRotate: a signing secret is shown in full
// when it is made and by the reveal call, masked everywhere else; a
// rotation signs with the new secret and keeps the previous one active
// beside it, never more than two.
func TestUpstreamSecretsMaskedRevealRotate(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	rec := newRecorder(t)

	var created upstreamAnswer
	decode(t, g.admin(http.MethodPost, "/admin/hubs/chat/upstreams",
		map[string]any{"name": "fn", "urlTemplate": rec.URL(), "events": []string{"connect"}, "skipValidation": true}, http.StatusCreated), &created)
	if len(created.Secrets) != 1 || upstream.CheckSecret(created.Secrets[0]) != nil {
		t.Fatalf("create answered secrets %q, want one whole secret", created.Secrets)
	}
	first := created.Secrets[0]
	masked := first[:len("whsec_")+4] + "…"

	for _, path := range []string{"/admin/hubs/chat/upstreams", "/admin/hubs/chat/upstreams/fn"} {
		body := g.admin(http.MethodGet, path, nil, http.StatusOK)
		if bytes.Contains(body, []byte(first[len("whsec_"):])) {
			t.Errorf("GET %s shows the secret: %s", path, body)
		}
		if !bytes.Contains(body, []byte(`"secrets":["`+masked+`"]`)) {
			t.Errorf("GET %s = %s, want the secret masked as %q", path, body, masked)
		}
	}
	// A PUT that keeps the secret does not show it either.
	if body := g.admin(http.MethodPut, "/admin/hubs/chat/upstreams/fn",
		map[string]any{"urlTemplate": rec.URL(), "events": []string{"connect"}, "skipValidation": true}, http.StatusOK); bytes.Contains(body, []byte(first)) {
		t.Errorf("PUT keeping the secret shows it: %s", body)
	}
	// Sending the masked form back is refused with what to do.
	status, body := do(t, http.MethodPut, g.url+"/admin/hubs/chat/upstreams/fn", g.node.AdminKey(),
		map[string]any{"urlTemplate": rec.URL(), "secrets": []string{masked}, "skipValidation": true})
	if status != http.StatusBadRequest || !strings.Contains(errorBody(t, body), "masked") {
		t.Errorf("PUT with the masked secret = %d %s, want 400 saying it is masked", status, body)
	}

	status, body = do(t, http.MethodGet, g.url+"/admin/hubs/chat/upstreams/fn/secrets", g.node.AdminKey(), nil)
	var revealed secretsAnswer
	decode(t, body, &revealed)
	if status != http.StatusOK || len(revealed.Secrets) != 1 || revealed.Secrets[0] != first {
		t.Fatalf("reveal = %d %s, want the secret", status, body)
	}

	var rotated secretsAnswer
	decode(t, g.admin(http.MethodPost, "/admin/hubs/chat/upstreams/fn/secrets/:rotate", nil, http.StatusOK), &rotated)
	if len(rotated.Secrets) != 2 || rotated.Secrets[1] != first || rotated.Secrets[0] == first ||
		upstream.CheckSecret(rotated.Secrets[0]) != nil || rotated.Dropped != 0 {
		t.Fatalf("rotation answered %+v, want a new secret followed by the previous one", rotated)
	}
	second := rotated.Secrets[0]

	// Webhooks now carry a signature per active secret: a function that
	// knows only the new secret, or only the old one, accepts them.
	rec.mu.Lock()
	rec.secret = second
	rec.mu.Unlock()
	c := g.dial("chat", "alice", nil)
	ev := rec.waitEvent(isEvent("connect", c.ConnectionID()))
	if !validSignature(first, ev.Header, ev.Body) {
		t.Errorf("after rotation the webhook is not signed with the previous secret too: %q", ev.Header.Get("webhook-signature"))
	}

	// A given secret must be well formed; the next rotation drops the oldest.
	for _, bad := range []string{"whsec_short", masked, "not-a-secret"} {
		status, body := do(t, http.MethodPost, g.url+"/admin/hubs/chat/upstreams/fn/secrets/:rotate", g.node.AdminKey(), map[string]string{"secret": bad})
		if status != http.StatusBadRequest || !strings.HasPrefix(errorBody(t, body), "secret: ") {
			t.Errorf("rotate to %q = %d %s, want 400 naming the secret", bad, status, body)
		}
	}
	third := upstream.NewSecret()
	decode(t, g.admin(http.MethodPost, "/admin/hubs/chat/upstreams/fn/secrets/:rotate", map[string]string{"secret": third}, http.StatusOK), &rotated)
	if len(rotated.Secrets) != 2 || rotated.Secrets[0] != third || rotated.Secrets[1] != second || rotated.Dropped != 1 {
		t.Errorf("second rotation answered %+v, want [given, previous] with one dropped", rotated)
	}
	decode(t, g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/fn/secrets", nil, http.StatusOK), &revealed)
	if len(revealed.Secrets) != 2 || revealed.Secrets[0] != third || revealed.Secrets[1] != second {
		t.Errorf("after two rotations the secrets are %q", revealed.Secrets)
	}
	g.admin(http.MethodPost, "/admin/hubs/chat/upstreams/nope/secrets/:rotate", nil, http.StatusNotFound)
	g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/nope/secrets", nil, http.StatusNotFound)
}

// TestUpstreamSecretFormat: an admin-supplied secret is checked where it
// enters.
func TestUpstreamSecretFormat(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	for _, tt := range []struct {
		name   string
		secret string
		want   string // "" accepted, else part of the error
	}{
		{"generated form", upstream.NewSecret(), ""},
		{"no prefix", strings.TrimPrefix(upstream.NewSecret(), "whsec_"), `must start with "whsec_"`},
		{"not base64", "whsec_not base64!", "standard base64"},
		{"too short", "whsec_AAAA", "encodes 3 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, http.MethodPost, g.url+"/admin/hubs/chat/upstreams", g.node.AdminKey(), map[string]any{
				"name": strings.ReplaceAll(tt.name, " ", "-"), "urlTemplate": "http://127.0.0.1:1/", "secrets": []string{tt.secret}, "skipValidation": true})
			if tt.want == "" {
				var u upstreamAnswer
				if status != http.StatusCreated || json.Unmarshal(body, &u) != nil || len(u.Secrets) != 1 || u.Secrets[0] != tt.secret {
					t.Errorf("create = %d %s, want 201 showing the given secret", status, body)
				}
				return
			}
			if msg := errorBody(t, body); status != http.StatusBadRequest || !strings.Contains(msg, tt.want) {
				t.Errorf("create = %d %q, want 400 mentioning %q", status, msg, tt.want)
			}
		})
	}
}

// TestShadowedUpstreamWarning: registering an upstream whose blocking
// events an earlier one already takes answers with a warning naming both
// and the events; notifications alone never warn.
func TestShadowedUpstreamWarning(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	add := func(method, name string, events ...string) []string {
		t.Helper()
		path, want := "/admin/hubs/chat/upstreams", http.StatusCreated
		if method == http.MethodPut {
			path, want = path+"/"+name, http.StatusOK
		}
		var u upstreamAnswer
		decode(t, g.admin(method, path, map[string]any{"name": name, "urlTemplate": "http://127.0.0.1:1/" + name,
			"events": events, "skipValidation": true}, want), &u)
		return u.Warnings
	}
	if w := add(http.MethodPost, "first", "connect", "connected", "message:send"); len(w) != 0 {
		t.Errorf("the first upstream got warnings %q", w)
	}
	if w := add(http.MethodPost, "notes", "connected", "disconnected"); len(w) != 0 {
		t.Errorf("a notifications-only upstream got warnings %q", w)
	}
	if w := add(http.MethodPost, "other", "message:Other"); len(w) != 0 {
		t.Errorf("an upstream of other targets got warnings %q", w)
	}
	w := add(http.MethodPost, "second", "connect", "message:*")
	if len(w) != 2 || !strings.Contains(w[0], `"first" comes first and also takes connect, message:send`) ||
		!strings.Contains(w[0], `"second" will not get those`) || !strings.Contains(w[1], `"other" comes first and also takes message:other`) {
		t.Errorf("warnings %q, want first (connect, message:send) and other (message:other)", w)
	}
	// Replacing keeps the place in the order, so the warning stays true.
	if w := add(http.MethodPut, "second", "message:SEND"); len(w) != 1 || !strings.Contains(w[0], "takes message:send") {
		t.Errorf("warnings after narrowing %q, want message:send only", w)
	}
	// The list shows the order and, per upstream, what it loses.
	var list []upstreamAnswer
	decode(t, g.admin(http.MethodGet, "/admin/hubs/chat/upstreams", nil, http.StatusOK), &list)
	var names []string
	for _, u := range list {
		names = append(names, u.Name)
	}
	if strings.Join(names, ",") != "first,notes,other,second" || len(list[3].Warnings) != 1 || len(list[0].Warnings) != 0 {
		t.Errorf("list = %+v, want first,notes,other,second and a warning on second only", list)
	}
	if w := add(http.MethodPut, "first", "connect"); len(w) != 0 {
		t.Errorf("the first upstream, replaced, got warnings %q", w)
	}
}

// TestAdminShowsEffectiveValues: an idle node's status lists no hubs as
// [], and a hub that set no size limit shows the one in force.
func TestAdminShowsEffectiveValues(t *testing.T) {
	g := startNode(t)
	if body := g.admin(http.MethodGet, "/admin/status", nil, http.StatusOK); !bytes.Contains(body, []byte(`"hubs":[]`)) {
		t.Errorf("idle status = %s, want \"hubs\":[]", body)
	}
	g.createHub("chat", false)
	var hubs []struct {
		Name           string `json:"name"`
		MaxMessageSize int    `json:"maxMessageSize"`
	}
	decode(t, g.admin(http.MethodGet, "/admin/hubs", nil, http.StatusOK), &hubs)
	if len(hubs) != 1 || hubs[0].MaxMessageSize != 32<<10 {
		t.Errorf("hubs = %+v, want chat with maxMessageSize 32768", hubs)
	}
	var hub struct {
		MaxMessageSize int `json:"maxMessageSize"`
	}
	decode(t, g.admin(http.MethodPut, "/admin/hubs/chat", map[string]any{"maxMessageSize": 1000}, http.StatusOK), &hub)
	if hub.MaxMessageSize != 1000 {
		t.Errorf("after setting 1000 the hub shows %d", hub.MaxMessageSize)
	}
}
