package delivery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/upstream"
)

// rawAnswer serves every connection by reading one request and writing
// answer byte for byte, so header names keep the case the test chose. It
// records the request's WebHook-Request-Origin and method.
func rawAnswer(t *testing.T, answer string) (*rawServer, func() (method, origin string)) {
	var mu sync.Mutex
	var method, origin string
	s := newRawServer(t, func(conn net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		mu.Lock()
		method, origin = req.Method, req.Header.Get("Webhook-Request-Origin")
		mu.Unlock()
		_, _ = conn.Write([]byte(strings.ReplaceAll(answer, "\n", "\r\n")))
	})
	return s, func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		return method, origin
	}
}

func TestCheckRegistration(t *testing.T) {
	t.Parallel()
	const end = "Content-Length: 0\nConnection: close\n\n"
	tests := []struct {
		name    string
		answer  string
		wantErr string // empty: accepted
	}{
		{"origin echoed", "HTTP/1.1 200 OK\nWebHook-Allowed-Origin: gw.example.com\n" + end, ""},
		{"odd-case header name", "HTTP/1.1 200 OK\nwEbHoOk-aLlOwEd-oRiGiN: gw.example.com\n" + end, ""},
		{"lower-case header, upper-case origin", "HTTP/1.1 200 OK\nwebhook-allowed-origin: GW.EXAMPLE.COM\n" + end, ""},
		{"wildcard", "HTTP/1.1 200 OK\nWebHook-Allowed-Origin: *\n" + end, ""},
		{"204 counts as success", "HTTP/1.1 204 No Content\nWebHook-Allowed-Origin: *\nConnection: close\n\n", ""},
		{"wrong origin", "HTTP/1.1 200 OK\nWebHook-Allowed-Origin: evil.example.com\n" + end,
			`answered 200 OK with a WebHook-Allowed-Origin that is neither "gw.example.com" nor "*"`},
		{"no header", "HTTP/1.1 200 OK\nX-Other: 1\n" + end, "answered 200 OK with no WebHook-Allowed-Origin header;"},
		{"refused", "HTTP/1.1 405 Method Not Allowed\nAllow: POST\nContent-Length: 8\nConnection: close\n\nno thanks",
			`answered 405 Method Not Allowed with no WebHook-Allowed-Origin header;`},
		{"redirect not followed", "HTTP/1.1 307 Temporary Redirect\nLocation: http://elsewhere/\nWebHook-Allowed-Origin: *\n" + end,
			"answered 307 Temporary Redirect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := rawAnswer(t, tt.answer)
			err := CheckRegistration(context.Background(), nil, srv.url, "gw.example.com")
			if method, origin := got(); method != http.MethodOptions || origin != "gw.example.com" {
				t.Errorf("request was %s with origin %q, want OPTIONS with gw.example.com", method, origin)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrRegistrationRefused)):
				t.Errorf("err = %v, want ErrRegistrationRefused containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestCheckRegistrationKeepsAnswerPrivate: the check's error tells the admin
// the status and what was wrong with the one header it reads, and nothing
// else of the answer: a URL may name an internal service the gateway
// reaches, whose headers, body and reason phrase are not the admin's to
// read through the admin API.
func TestCheckRegistrationKeepsAnswerPrivate(t *testing.T) {
	t.Parallel()
	secrets := []string{"X-Internal-Token", "tok-3141", "redis-7.2", "SECRET-BODY", "hunter2", "SECRET-REASON", "evil.internal"}
	for _, answer := range []string{
		"HTTP/1.1 200 SECRET-REASON\nX-Internal-Token: tok-3141\nServer: redis-7.2\nContent-Length: 22\nConnection: close\n\nSECRET-BODY: hunter2 ..",
		"HTTP/1.1 401 SECRET-REASON\nWWW-Authenticate: tok-3141\nContent-Length: 11\nConnection: close\n\nSECRET-BODY",
		"HTTP/1.1 200 OK\nWebHook-Allowed-Origin: evil.internal\nX-Internal-Token: tok-3141\nContent-Length: 7\nConnection: close\n\nhunter2",
	} {
		srv, _ := rawAnswer(t, answer)
		err := CheckRegistration(context.Background(), nil, srv.url, "gw.example.com")
		if err == nil {
			t.Fatalf("answer %q accepted", answer)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("the error repeats %q of the answer: %v", s, err)
			}
		}
	}
}

func TestCheckRegistrationUnreachable(t *testing.T) {
	t.Parallel()
	url := fmt.Sprintf("http://%s/hook", testutil.FreeAddr(t))
	err := CheckRegistration(context.Background(), nil, url, "gw")
	if !errors.Is(err, ErrRegistrationRefused) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v, want a refused connection", err)
	}
	// Nothing listens: the admin is told what to do about it.
	for _, advice := range []string{"start the function first", "--skip-validation"} {
		if err == nil || !strings.Contains(err.Error(), advice) {
			t.Errorf("err = %v, want it to advise %q", err, advice)
		}
	}
}

// TestHandlerWithoutSecretPassesCheck: a function started before its
// upstream is registered, so without the secret registration prints, passes
// the check (the tour's order).
func TestHandlerWithoutSecretPassesCheck(t *testing.T) {
	t.Parallel()
	h := upstream.Handler(nil, func(context.Context, *upstream.Event) (*upstream.Reply, error) { return nil, nil })
	srv := httptest.NewServer(h)
	defer srv.Close()
	if err := CheckRegistration(context.Background(), nil, srv.URL+"/api", "gw.example.com"); err != nil {
		t.Errorf("SDK handler without a secret refused: %v", err)
	}
}

// TestHandlerPassesCheck: the SDK's handler answers the check by itself.
func TestHandlerPassesCheck(t *testing.T) {
	t.Parallel()
	h := upstream.Handler([]string{testSecret}, func(context.Context, *upstream.Event) (*upstream.Reply, error) { return nil, nil })
	srv := httptest.NewServer(h)
	defer srv.Close()
	if err := CheckRegistration(context.Background(), nil, srv.URL+"/api", "gw.example.com"); err != nil {
		t.Errorf("SDK handler refused: %v", err)
	}
}
