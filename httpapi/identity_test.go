package httpapi

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/identity"
)

// TestRESTOperations: every REST route the server registers needs a known
// operation of OIDC callers, so a route added later cannot be open to them
// by accident, nor closed without anyone noticing.
func TestRESTOperations(t *testing.T) {
	s := New(Config{})
	want := map[string]identity.Operation{
		"POST /api/hubs/:hub/:send":                                  identity.OpSend,
		"POST /api/v1/hubs/:hub/groups/:group":                       identity.OpSend,
		"POST /api/hubs/:hub/:generateToken":                         identity.OpGenerateToken,
		"DELETE /api/hubs/:hub/connections/:connectionId":            identity.OpClose,
		"POST /api/hubs/:hub/groups/:group/:closeConnections":        identity.OpClose,
		"PUT /api/hubs/:hub/groups/:group/connections/:connectionId": identity.OpGroups,
		"DELETE /api/hubs/:hub/users/:user/groups":                   identity.OpGroups,
		"HEAD /api/hubs/:hub/users/:user":                            identity.OpRead,
		"GET /api/hubs/:hub/connections":                             identity.OpRead,
		"POST /api/hubs/:hub/:actions":                               opPerAction,
	}
	seen := 0
	for _, r := range s.echo.Routes() {
		if !strings.HasPrefix(r.Path, "/api/hubs/") && !strings.HasPrefix(r.Path, "/api/v1/hubs/") || r.Method == "echo_route_not_found" {
			continue
		}
		seen++
		route := strings.ReplaceAll(r.Path, `\`, "")
		op := restOperation(r.Method, r.Path)
		if op == "" {
			t.Errorf("%s %s needs no known operation", r.Method, route)
		}
		if w, ok := want[r.Method+" "+route]; ok {
			if op != w {
				t.Errorf("%s %s: got %q, want %q", r.Method, route, op, w)
			}
			delete(want, r.Method+" "+route)
		}
	}
	if seen < 30 {
		t.Errorf("only %d REST routes seen; did the routes move?", seen)
	}
	for r := range want {
		t.Errorf("route %s is not registered", r)
	}
	for _, a := range []string{actions.Broadcast, actions.SendToGroup, actions.SendToUser, actions.SendToConnection,
		actions.AddToGroup, actions.RemoveFromGroup, actions.AddUserToGroup, actions.RemoveUserFromGroup, actions.CloseConnection} {
		if actionOperation(a) == "" {
			t.Errorf("action %s needs no known operation", a)
		}
	}
}

func TestAccessKeyToken(t *testing.T) {
	tests := []struct {
		name, token string
		want        bool
	}{
		{"HS256", "eyJhbGciOiJIUzI1NiJ9.e30.x", true},
		{"RS256", "eyJhbGciOiJSUzI1NiJ9.e30.x", false},
		{"EdDSA", "eyJhbGciOiJFZERTQSJ9.e30.x", false},
		{"no dots", "garbage", true},
		{"bad header", "!!!.e30.x", true},
	}
	for _, tc := range tests {
		if got := accessKeyToken(tc.token); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	// An oversized token's header is not decoded: nothing is allocated for
	// it, and it goes to the verifier that refuses it by its length.
	huge := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","x":"`+strings.Repeat("a", 1<<20)+`"}`)) + ".e30.x"
	if accessKeyToken(huge) {
		t.Error("oversized token: went to the access-key verifier, whose header it was decoded for")
	}
	if allocs := testing.AllocsPerRun(10, func() { accessKeyToken(huge) }); allocs != 0 {
		t.Errorf("oversized token: %v allocations before any check of its sender, want 0", allocs)
	}
}
