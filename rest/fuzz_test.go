package rest

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeError feeds arbitrary error answers to decodeError: whatever a
// gateway or a proxy in front of it answers, the result keeps the status,
// never panics and has a bounded, one-line message.
func FuzzDecodeError(f *testing.F) {
	f.Add(400, "Error.InvalidTarget", []byte(`{"code":"Error.InvalidTarget","message":"target is required"}`))
	f.Add(409, "", []byte(`{"error":"only key"}`))
	f.Add(502, "", []byte("<html>\nbad gateway\n</html>"))
	f.Add(500, "", []byte(`{"code":1,"message":["x"]}`))
	f.Add(404, "Warning.Group.NotExisted", []byte(nil))
	f.Fuzz(func(t *testing.T, status int, code string, body []byte) {
		e := decodeError(status, code, body)
		if e.Status != status {
			t.Fatalf("status %d, want %d", e.Status, status)
		}
		_ = e.Error()
		if !strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			if strings.Contains(e.Message, "\n") {
				t.Fatalf("message %q spans lines", e.Message)
			}
			if len(e.Message) > 200+len("…") {
				t.Fatalf("message of %d bytes is not bounded", len(e.Message))
			}
			if utf8.ValidString(string(body)) && !utf8.ValidString(e.Message) {
				t.Fatalf("message %q split a character", e.Message)
			}
		}
	})
}
