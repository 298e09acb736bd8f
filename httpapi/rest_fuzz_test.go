package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/actions"
)

// FuzzReadMessage: any body either is refused with a REST error or yields a
// non-empty target and a valid JSON array of arguments that passes the
// action's own validation.
func FuzzReadMessage(f *testing.F) {
	for _, s := range []string{
		`{"target":"msg","arguments":["hi",1,{"a":null}]}`,
		`{"target":"msg"}`,
		`{"target":"msg","arguments":null}`,
		`{"target":"","arguments":[]}`,
		`{"target":"msg","arguments":"x"}`,
		`{"target":"msg","arguments": [1] }`,
		`{"arguments":[]}`,
		`[]`, `null`, ``, `{`, `{"target":1}`,
	} {
		f.Add(s)
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/api/hubs/chat/:send", strings.NewReader(body))
		c := e.NewContext(req, httptest.NewRecorder())
		a := &actions.Action{Action: actions.Broadcast}
		err := readMessage(c, a)
		if err != nil {
			var re *restError
			if !errors.As(err, &re) || re.status != http.StatusBadRequest {
				t.Fatalf("body %q: error %v is not a 400 REST error", body, err)
			}
			return
		}
		if strings.TrimSpace(a.Target) == "" || !json.Valid(a.Arguments) || a.Arguments[0] != '[' {
			t.Fatalf("body %q accepted as target %q arguments %q", body, a.Target, a.Arguments)
		}
		if err := a.Validate(false); err != nil {
			t.Fatalf("body %q accepted but the action is invalid: %v", body, err)
		}
	})
}
