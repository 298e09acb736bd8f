package input

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits, in bytes of UTF-8. Where Azure SignalR has one, it is the same.
const (
	// MaxHub is the longest hub name (Azure: 1 to 128 characters).
	MaxHub = 128
	// MaxTarget is the longest invocation target (a hub method name).
	MaxTarget = 256
	// MaxUserID is the longest user id.
	MaxUserID = 1024
	// MaxGroup is the longest group name (Azure: 1 to 1024 characters).
	MaxGroup = 1024
	// MaxConnectionID is the longest connection id an action or a REST
	// path may name; the gateway's own are far shorter.
	MaxConnectionID = 256
	// MaxReason is the longest close reason.
	MaxReason = 1024

	// MaxClaims is the most claims a token may carry; every one is copied
	// into the connect and connected webhooks. The token's own size limit
	// (4 KiB, as in Azure) bounds their total size.
	MaxClaims = 64
	// MaxClaimName is the longest claim name.
	MaxClaimName = 256

	// MaxQueryParams and MaxQueryBytes bound the connect request's query
	// parameters copied into the connect webhook (all but id and
	// access_token): their number, and the bytes of their names and values.
	MaxQueryParams = 64
	MaxQueryBytes  = 8 << 10
	// MaxHeaderBytes bounds the connect request's headers copied into the
	// connect webhook: names, values and 4 bytes per line, as on the wire
	// (Azure caps a request's headers at 16 KB).
	MaxHeaderBytes = 16 << 10
)

// ErrInvalid is matched, under errors.Is, by every error of this package.
var ErrInvalid = errors.New("input: invalid")

// Error says what is wrong with one value.
type Error struct {
	// What names the value: "target", "user id", "group name", …
	What string
	// Problem says what is wrong, in words for the caller, e.g.
	// `"a\nb" contains a control character (U+000A)`.
	Problem string
}

func (e *Error) Error() string { return e.What + " " + e.Problem }

// Is makes every Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func bad(what, format string, args ...any) error {
	return &Error{What: what, Problem: fmt.Sprintf(format, args...)}
}

// Quote renders s for a message: Go-quoted (control characters escaped) and
// cut to its first 40 bytes, so a message never carries a huge or raw value.
func Quote(s string) string {
	const keep = 40
	if len(s) <= keep {
		return fmt.Sprintf("%q", s)
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…", s[:cut])
}

// textProblem reports why s is not text (valid UTF-8 without control
// characters), or "" when it is.
func textProblem(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return fmt.Sprintf("%s contains a control character (U+%04X at byte %d)", Quote(s), c, i)
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			return fmt.Sprintf("%s is not valid UTF-8 (byte %d)", Quote(s), i)
		}
		if r >= 0x80 && r <= 0x9f {
			return fmt.Sprintf("%s contains a control character (U+%04X at byte %d)", Quote(s), r, i)
		}
		i += w
	}
	return ""
}

// Text reports whether s is valid UTF-8 without control characters.
func Text(s string) bool { return textProblem(s) == "" }

// checkText checks s as a what of 1 to maxLen bytes of text.
func checkText(what, s string, maxLen int) error {
	switch {
	case s == "":
		return bad(what, "is empty; give 1 to %d bytes", maxLen)
	case len(s) > maxLen:
		return bad(what, "is %d bytes long; the limit is %d", len(s), maxLen)
	}
	if p := textProblem(s); p != "" {
		return bad(what, "%s", p)
	}
	return nil
}

// Hub checks a hub name: 1 to 128 characters, a letter first, then letters,
// digits and _`,.[] (Azure's ^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$). Hub names
// are compared exactly, case included: "chat" and "Chat" are two hubs.
func Hub(name string) error {
	switch {
	case name == "":
		return bad("hub name", "is empty")
	case len(name) > MaxHub:
		return bad("hub name", "is %d characters long; the limit is %d", len(name), MaxHub)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || strings.IndexByte("_`,.[]", c) >= 0):
		default:
			return bad("hub name", "%s is invalid: it must start with a letter and contain only letters, digits and _`,.[]", Quote(name))
		}
	}
	return nil
}

// Target checks an invocation target (the method a client invokes, or the
// client method an action calls): 1 to 256 bytes of text, not only
// whitespace, without '/' or '\', and not "." or "..". A target is the
// {event} of a webhook URL, one path segment, so it must never be able to
// become a dot segment or a path separator, even for a receiver that decodes
// percent escapes before it normalises the path.
func Target(s string) error {
	if err := checkText("target", s, MaxTarget); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(s) == "":
		return bad("target", "is only whitespace")
	case s == "." || s == "..":
		return bad("target", "%s is not a method name", Quote(s))
	case strings.ContainsAny(s, `/\`):
		return bad("target", "%s contains '/' or '\\'; a target is one URL path segment", Quote(s))
	}
	return nil
}

// UserID checks a user id: 1 to 1024 bytes of text. The empty user id means
// "anonymous" where one is optional; callers check emptiness themselves.
func UserID(s string) error { return checkText("user id", s, MaxUserID) }

// Group checks a group name: 1 to 1024 bytes of text, not only whitespace
// (Azure's rule, plus no control characters).
func Group(s string) error {
	if err := checkText("group name", s, MaxGroup); err != nil {
		return err
	}
	if strings.TrimSpace(s) == "" {
		return bad("group name", "is only whitespace")
	}
	return nil
}

// ConnectionID checks a connection id named by an action or a REST path:
// 1 to 256 bytes of text.
func ConnectionID(s string) error { return checkText("connection id", s, MaxConnectionID) }

// Reason checks a close reason: at most 1024 bytes of text; empty is fine.
func Reason(s string) error {
	if s == "" {
		return nil
	}
	return checkText("reason", s, MaxReason)
}

// Claims checks the claims of a token, all of which are copied into the
// connect and connected webhooks: at most 64, each name 1 to 256 bytes of
// text, and every string inside a value (at any depth) text.
func Claims(claims map[string]any) error {
	if len(claims) > MaxClaims {
		return bad("token", "has %d claims; the limit is %d", len(claims), MaxClaims)
	}
	for name, v := range claims {
		if err := checkText("claim name", name, MaxClaimName); err != nil {
			return err
		}
		if p := valueProblem(v); p != "" {
			return bad("claim", "%s: %s", Quote(name), p)
		}
	}
	return nil
}

// valueProblem finds a string that is not text inside a decoded JSON value.
func valueProblem(v any) string {
	switch x := v.(type) {
	case string:
		return textProblem(x)
	case []any:
		for _, e := range x {
			if p := valueProblem(e); p != "" {
				return p
			}
		}
	case map[string]any:
		for k, e := range x {
			if p := textProblem(k); p != "" {
				return p
			}
			if p := valueProblem(e); p != "" {
				return p
			}
		}
	}
	return ""
}

// ConnectQuery checks the query parameters a connect request hands the
// connect webhook: at most 64 names, names and values text, and at most
// 8 KiB of names and values together.
func ConnectQuery(q map[string][]string) error {
	if len(q) > MaxQueryParams {
		return bad("query", "has %d parameters; the limit is %d", len(q), MaxQueryParams)
	}
	total := 0
	for k, vs := range q {
		if p := textProblem(k); p != "" {
			return bad("query parameter name", "%s", p)
		}
		total += len(k)
		for _, v := range vs {
			if p := textProblem(v); p != "" {
				return bad("query parameter", "%s: %s", Quote(k), p)
			}
			total += len(v)
		}
	}
	if total > MaxQueryBytes {
		return bad("query", "carries %d bytes of names and values; the limit is %d", total, MaxQueryBytes)
	}
	return nil
}

// ConnectHeaders checks the headers a connect request hands the connect
// webhook: at most 16 KiB counted as on the wire. An HTTP server has already
// refused values with control characters.
func ConnectHeaders(h map[string][]string) error {
	total := 0
	for k, vs := range h {
		for _, v := range vs {
			total += len(k) + len(v) + 4 // "Name: value\r\n"
		}
	}
	if total > MaxHeaderBytes {
		return bad("request headers", "take %d bytes; the limit is %d", total, MaxHeaderBytes)
	}
	return nil
}
