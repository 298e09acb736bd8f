package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/node"
)

// jwtToken signs claims with the node's key the way golang-jwt does by
// default: a single audience given as jwt.ClaimStrings is written as a JSON
// array, as RFC 7519 allows.
func (g *gw) jwtToken(claims jwt.Claims) string {
	g.t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = g.cs.KeyID
	s, err := tok.SignedString([]byte(g.cs.AccessKey))
	if err != nil {
		g.t.Fatal(err)
	}
	return s
}

func (g *gw) audienceToken(hub string, asList bool) string {
	aud := negotiate.ClientURL(g.url, hub)
	if asList {
		return g.jwtToken(jwt.RegisteredClaims{Audience: jwt.ClaimStrings{aud}, Subject: "u",
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	}
	return g.jwtToken(jwt.MapClaims{"aud": aud, "sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
}

// TestTokenBoundToOneHub: a client token opens exactly the hub its audience
// names, whether aud is a string or a list, and hub names are compared
// exactly: hub "A" is not hub "a".
func TestTokenBoundToOneHub(t *testing.T) {
	g := startNode(t)
	for _, h := range []string{"a", "b", "A"} {
		g.createHub(h, false)
	}
	if raw := g.audienceToken("b", true); !strings.Contains(decodePayload(t, raw), `"aud":["`) {
		t.Fatalf("golang-jwt wrote aud as %s; the test needs the list form", decodePayload(t, raw))
	}
	tests := []struct {
		name, hub, token string
		status           int
		want             string
	}{
		{"list aud for b opens b", "b", g.audienceToken("b", true), 200, ""},
		{"string aud for b opens b", "b", g.audienceToken("b", false), 200, ""},
		{"list aud for b does not open a", "a", g.audienceToken("b", true), 401, `token is for hub "b", not "a"`},
		{"string aud for b does not open a", "a", g.audienceToken("b", false), 401, `token is for hub "b", not "a"`},
		{"a token for a does not open A", "A", g.audienceToken("a", false), 401, `token is for hub "a", not "A"`},
		{"a token for A does not open a", "a", g.audienceToken("A", true), 401, `token is for hub "A", not "a"`},
		{"a list naming two hubs opens neither", "a", g.jwtToken(jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(),
			"aud": []string{negotiate.ClientURL(g.url, "a"), negotiate.ClientURL(g.url, "b")}}), 401, "a client token is for exactly one hub"},
		{"an audience without a hub opens nothing", "a", g.jwtToken(jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(),
			"aud": g.url + "/client/"}), 401, "names no hub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, http.MethodPost, g.url+"/client/negotiate?hub="+tt.hub, tt.token, nil)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if tt.want != "" {
				if msg := errorBody(t, body); !strings.Contains(msg, tt.want) {
					t.Errorf("error %q, want it to say %q", msg, tt.want)
				}
			}
		})
	}

	// The socket checks a token it did not negotiate with the same way: a
	// connection of hub a cannot be opened with a list-aud token for b.
	status, body := do(t, http.MethodPost, g.url+"/client/negotiate?hub=a", g.audienceToken("a", true), nil)
	if status != http.StatusOK {
		t.Fatalf("negotiate with a token for a: %d %s", status, body)
	}
	var neg struct {
		ConnectionToken string `json:"connectionToken"`
	}
	decode(t, body, &neg)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/client/?hub=a&id="+neg.ConnectionToken,
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + g.audienceToken("b", true)}}})
	if err == nil {
		ws.CloseNow()
		t.Fatal("socket of hub a opened with a token for hub b")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("upgrade with a token for b: %v, want 401", err)
	}
}

func decodePayload(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := jwt.NewParser().DecodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTokenLifetimeBounded: tokens valid for longer than the maximum are
// refused (24 h by default, node.Config.MaxTokenLifetime to change it), and
// :generateToken issues none longer, answering 400 with the limit.
func TestTokenLifetimeBounded(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	issue := func(life time.Duration) string {
		tok, err := negotiate.IssueToken(g.cs.Key(), negotiate.TokenOptions{Audience: negotiate.ClientURL(g.url, "chat"), UserID: "u", Lifetime: life})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	status, body := do(t, http.MethodPost, g.url+"/client/negotiate?hub=chat", issue(100*365*24*time.Hour), nil)
	if status != http.StatusUnauthorized || !strings.Contains(errorBody(t, body), "longer than the 24h0m0s this gateway accepts") {
		t.Errorf("a century-long token: %d %s, want 401 naming the limit", status, body)
	}
	if status, body := do(t, http.MethodPost, g.url+"/client/negotiate?hub=chat", issue(23*time.Hour), nil); status != http.StatusOK {
		t.Errorf("a 23 h token: %d %s", status, body)
	}

	gen := "/api/hubs/chat/:generateToken"
	for _, tt := range []struct {
		name, query string
		status      int
		want        string
	}{
		{"a trillion minutes", "minutesToExpire=1000000000000", 400, "from 1 to 1440 (24h0m0s, the gateway's maximum token lifetime)"},
		{"past int64", "minutesToExpire=99999999999999999999999", 400, "from 1 to 1440"},
		{"one minute over", "minutesToExpire=1441", 400, "from 1 to 1440"},
		{"zero", "minutesToExpire=0", 400, "from 1 to 1440"},
		{"the maximum", "minutesToExpire=1440", 200, ""},
		{"user id over 1024 bytes", "userId=" + strings.Repeat("u", 2000), 400, "userId: the user id is 2000 bytes long; the limit is 1024"},
		{"user id too large for a token", "userId=" + url.QueryEscape(strings.Repeat("<", 1024)), 400, "token too large"},
		{"user id with CRLF", "userId=" + url.QueryEscape("bob\r\nX-Admin: 1"), 400, "control character"},
		{"user id of 1024 bytes", "userId=" + strings.Repeat("u", 1024), 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := g.rest(http.MethodPost, gen+"?"+tt.query, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.want == "" {
				var out struct{ Token string }
				decode(t, r.body, &out)
				if st, b := do(t, http.MethodPost, g.url+"/client/negotiate?hub=chat", out.Token, nil); st != http.StatusOK {
					t.Errorf("the issued token does not negotiate: %d %s", st, b)
				}
				return
			}
			if code := r.errorCode(t); code != "Error.InvalidParameter" || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("answer %s, want Error.InvalidParameter saying %q", r.body, tt.want)
			}
		})
	}

	// The maximum is a setting.
	short := startNode(t, func(c *node.Config) { c.MaxTokenLifetime = time.Hour })
	short.createHub("chat", false)
	tok, _ := negotiate.IssueToken(short.cs.Key(), negotiate.TokenOptions{Audience: negotiate.ClientURL(short.url, "chat"), Lifetime: 2 * time.Hour})
	if status, body := do(t, http.MethodPost, short.url+"/client/negotiate?hub=chat", tok, nil); status != http.StatusUnauthorized ||
		!strings.Contains(string(body), "longer than the 1h0m0s") {
		t.Errorf("a 2 h token with a 1 h maximum: %d %s", status, body)
	}
	if r := short.rest(http.MethodPost, gen+"?minutesToExpire=61", nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "from 1 to 60") {
		t.Errorf("generateToken over a 1 h maximum: %d %s", r.status, r.body)
	}
}

// TestTokenUserIDAndClaimsChecked: a signed token whose user id or claims
// break the input rules cannot negotiate: they would reach every webhook.
func TestTokenUserIDAndClaimsChecked(t *testing.T) {
	g, rec := setup(t)
	exp := time.Now().Add(time.Hour).Unix()
	aud := negotiate.ClientURL(g.url, "chat")
	for _, tt := range []struct {
		name   string
		claims jwt.MapClaims
		want   string
	}{
		{"CRLF in nameid", jwt.MapClaims{"aud": aud, "exp": exp, "nameid": "bob\r\nX-Admin: 1"}, `user id "bob\r\nX-Admin: 1" contains a control character`},
		{"2000-byte sub", jwt.MapClaims{"aud": aud, "exp": exp, "sub": strings.Repeat("u", 2000)}, "user id is 2000 bytes long; the limit is 1024 (claim sub)"},
		{"NUL in a claim", jwt.MapClaims{"aud": aud, "exp": exp, "sub": "u", "role": "a\x00"}, `claim "role"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, http.MethodPost, g.url+"/client/negotiate?hub=chat", g.jwtToken(tt.claims), nil)
			if status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", status, body)
			}
			if msg := errorBody(t, body); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to say %q", msg, tt.want)
			}
		})
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("the upstream got %d events from refused tokens", n)
	}
	var st struct {
		Upstreams []struct {
			Breaker struct {
				State string `json:"state"`
			} `json:"breaker"`
		} `json:"upstreams"`
	}
	if err := json.Unmarshal(g.admin(http.MethodGet, "/admin/status", nil, http.StatusOK), &st); err != nil || st.Upstreams[0].Breaker.State != "closed" {
		t.Errorf("status %+v %v", st, err)
	}
}
