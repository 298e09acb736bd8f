package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/vmihailenco/msgpack/v5"

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

// FuzzReadMessageMsgpack: any MessagePack body, in either of Azure's
// content types, is refused with a 400 or yields what a JSON body would: a
// non-empty target and a valid JSON array of arguments.
func FuzzReadMessageMsgpack(f *testing.F) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	invocation := []byte(`{"type":1,"target":"msg","arguments":["hi",1]}` + "\x1e")
	packed := enc([]any{1, map[string]string{}, nil, "msg", []any{"hi", 1.5, []byte{1, 2}}})
	for _, seed := range [][]byte{
		enc(map[string]any{"target": "msg", "arguments": []any{"hi", 1, map[string]any{"a": nil}}}),
		enc(map[string]any{"Target": "msg"}),
		enc(map[string]any{"target": "msg", "arguments": "x"}),
		enc(map[string]any{"json": invocation}),
		enc(map[string]any{"messagepack": append([]byte{byte(len(packed))}, packed...)}),
		enc(map[string]any{"json": invocation, "messagepack": []byte{0}}),
		enc([]any{"msg"}), {}, {0xc1}, {0x81, 0xa6}, {0xdd, 0xff, 0xff, 0xff, 0xff},
	} {
		f.Add(false, seed)
		f.Add(true, seed)
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, binary bool, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/hubs/chat/:send", bytes.NewReader(body))
		req.Header.Set("Content-Type", mimeMsgpack)
		if binary {
			req.Header.Set("Content-Type", mimeBinary)
		}
		c := e.NewContext(req, httptest.NewRecorder())
		a := &actions.Action{Action: actions.Broadcast}
		err := readMessage(c, a)
		if err != nil {
			var re *restError
			if !errors.As(err, &re) || re.status != http.StatusBadRequest {
				t.Fatalf("body %x: error %v is not a 400 REST error", body, err)
			}
			return
		}
		if strings.TrimSpace(a.Target) == "" || !json.Valid(a.Arguments) || a.Arguments[0] != '[' {
			t.Fatalf("body %x accepted as target %q arguments %q", body, a.Target, a.Arguments)
		}
		if err := a.Validate(false); err != nil {
			t.Fatalf("body %x accepted but the action is invalid: %v", body, err)
		}
	})
}
