package input

import (
	"errors"
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name  string
		check func(string) error
		in    string
		want  string // substring of the error; "" means valid
	}{
		{"hub ok", Hub, "chat", ""},
		{"hub brackets", Hub, "a_b`,.[]9", ""},
		{"hub max", Hub, long(MaxHub), ""},
		{"hub too long", Hub, long(MaxHub + 1), "the limit is 128"},
		{"hub digit first", Hub, "1chat", "must start with a letter"},
		{"hub dash", Hub, "no-dash", "must start with a letter"},
		{"hub empty", Hub, "", "empty"},

		{"target ok", Target, "SendMessage", ""},
		{"target space inside", Target, "Send It", ""},
		{"target unicode", Target, "sénd✓", ""},
		{"target dots inside", Target, "a..b", ""},
		{"target three dots", Target, "...", ""},
		{"target max", Target, long(MaxTarget), ""},
		{"target too long", Target, long(MaxTarget + 1), "is 257 bytes long; the limit is 256"},
		{"target empty", Target, "", "empty"},
		{"target blank", Target, " \u00a0", "only whitespace"},
		{"target dot", Target, ".", "not a method name"},
		{"target dotdot", Target, "..", "not a method name"},
		{"target slash", Target, "a/b", "'/'"},
		{"target backslash", Target, `..\..`, "'/'"},
		{"target NUL", Target, "a\x00", "control character (U+0000 at byte 1)"},
		{"target CRLF", Target, "x\r\nInjected: 1", "control character (U+000D at byte 1)"},
		{"target DEL", Target, "a\x7f", "U+007F"},
		{"target C1", Target, "a\u0085", "U+0085"},
		{"target bad UTF-8", Target, "a\xff", "not valid UTF-8 (byte 1)"},

		{"user ok", UserID, "alice@example.com", ""},
		{"user with slash and space", UserID, "tenant/alice smith", ""},
		{"user max", UserID, long(MaxUserID), ""},
		{"user too long", UserID, long(100 << 10), "is 102400 bytes long; the limit is 1024"},
		{"user newline", UserID, "alice\nbob", "control character"},
		{"user empty", UserID, "", "empty"},

		{"group ok", Group, "room 1", ""},
		{"group max", Group, long(MaxGroup), ""},
		{"group too long", Group, long(MaxGroup + 1), "the limit is 1024"},
		{"group blank", Group, "   ", "only whitespace"},
		{"group tab", Group, "a\tb", "control character"},

		{"connection id ok", ConnectionID, "n1.abc_-", ""},
		{"connection id too long", ConnectionID, long(MaxConnectionID + 1), "the limit is 256"},
		{"connection id NUL", ConnectionID, "\x00", "control character"},

		{"reason empty", Reason, "", ""},
		{"reason ok", Reason, "bye now", ""},
		{"reason too long", Reason, long(MaxReason + 1), "the limit is 1024"},
		{"reason newline", Reason, "a\nb", "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.check(tt.in)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
			if len(err.Error()) > 200 {
				t.Errorf("message is %d bytes long; values must be quoted short: %s", len(err.Error()), err)
			}
		})
	}
}

func TestClaims(t *testing.T) {
	t.Parallel()
	many := map[string]any{}
	for i := range MaxClaims + 1 {
		many[strings.Repeat("c", i+1)] = 1
	}
	tests := []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"typical", map[string]any{"aud": "http://h/client/?hub=chat", "exp": 1.0, "nameid": "alice", "roles": []any{"a", "b"}, "o": map[string]any{"k": "v"}}, ""},
		{"none", nil, ""},
		{"too many", many, "has 65 claims; the limit is 64"},
		{"empty name", map[string]any{"": 1}, "claim name is empty"},
		{"long name", map[string]any{strings.Repeat("n", MaxClaimName+1): 1}, "the limit is 256"},
		{"control in name", map[string]any{"a\nb": 1}, "control character"},
		{"control in value", map[string]any{"role": "admin\r\nX: y"}, `claim "role": "admin\r\nX: y" contains a control character`},
		{"control deep in array", map[string]any{"r": []any{"ok", []any{"\x00"}}}, "control character"},
		{"control in nested key", map[string]any{"o": map[string]any{"\x01": 1}}, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Claims(tt.claims)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestConnectQueryAndHeaders(t *testing.T) {
	t.Parallel()
	params := map[string][]string{}
	for i := range MaxQueryParams + 1 {
		params[strings.Repeat("p", i+1)] = []string{"1"}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"query ok", ConnectQuery(map[string][]string{"hub": {"chat"}, "room": {"42", "43"}}), ""},
		{"query too many", ConnectQuery(params), "has 65 parameters; the limit is 64"},
		{"query too big", ConnectQuery(map[string][]string{"a": {strings.Repeat("x", MaxQueryBytes)}}), "the limit is 8192"},
		{"query control in value", ConnectQuery(map[string][]string{"room": {"4\x002"}}), `query parameter "room": "4\x002" contains a control character`},
		{"query control in name", ConnectQuery(map[string][]string{"r\nm": {"1"}}), "control character"},
		{"query bad UTF-8", ConnectQuery(map[string][]string{"room": {"\xc3"}}), "not valid UTF-8"},
		{"headers ok", ConnectHeaders(map[string][]string{"User-Agent": {"Mozilla/5.0"}}), ""},
		{"headers too big", ConnectHeaders(map[string][]string{"X-Big": {strings.Repeat("x", MaxHeaderBytes)}}), "the limit is 16384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.want == "" {
				if tt.err != nil {
					t.Fatalf("got %v, want valid", tt.err)
				}
				return
			}
			if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) || !errors.Is(tt.err, ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", tt.err, tt.want)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	if got := Quote("a\nb"); got != `"a\nb"` {
		t.Errorf("Quote(a\\nb) = %s", got)
	}
	// Cut at a rune boundary, never inside a character.
	got := Quote(strings.Repeat("é", 100))
	if !strings.HasSuffix(got, `"…`) || strings.Contains(got, `\x`) {
		t.Errorf("Quote cut badly: %s", got)
	}
}

// FuzzText checks Text against its definition, rune by rune.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "abc", "a\x00", "\u0085", "\xff", "é✓", "\x7f", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := true
		for i, r := range s {
			if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
				want = false
			}
			if r == '\uFFFD' && !strings.HasPrefix(s[i:], "\uFFFD") {
				want = false // an invalid byte, not a real U+FFFD
			}
		}
		if got := Text(s); got != want {
			t.Fatalf("Text(%q) = %v, want %v", s, got, want)
		}
		if Target(s) == nil && (strings.ContainsAny(s, `/\`) || s == "." || s == ".." || len(s) > MaxTarget || !want) {
			t.Fatalf("Target accepted %q", s)
		}
	})
}
