package delivery

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/input"
	"github.com/switchboard-gw/switchboard/upstream"
)

func TestExpand(t *testing.T) {
	tests := []struct {
		tpl, want string
	}{
		{"http://fn/api", "http://fn/api"},
		{"http://fn/{hub}/{category}/{event}", "http://fn/chat/messages/Send%20It"},
		{"http://fn/{event}?h={hub}", "http://fn/Send%20It?h=chat"},
		{"http://fn/{hub}{hub}", "http://fn/chatchat"},
		{"http://fn/{other}/{hub}", "http://fn/{other}/chat"},
		{"http://fn/{hub", "http://fn/{hub"},
		{"http://fn/x/{event}/", "http://fn/x/Send%20It/"},
	}
	for _, tt := range tests {
		if got := Expand(tt.tpl, "chat", upstream.CategoryMessages, "Send It"); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.tpl, got, tt.want)
		}
	}
	if got := Expand("http://fn/{event}", "h", upstream.CategoryMessages, "a/b"); got != "http://fn/a%2Fb" {
		t.Errorf("a slash in a value must be escaped: got %q", got)
	}
	// A value in the query is one query value, whatever a client's target
	// holds: the upstream sees the admin's parameters, and only them.
	got := Expand("http://fn/api?code=KEY&event={event}&hub={hub}", "chat", upstream.CategoryMessages, "x&code=evil;y=1#frag")
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("code") != "KEY" || len(q["code"]) != 1 || q.Get("event") != "x&code=evil;y=1#frag" || q.Get("hub") != "chat" || len(q) != 3 || u.Fragment != "" {
		t.Errorf("Expand = %q: query %v, fragment %q; want the admin's three parameters with the target as one value", got, q, u.Fragment)
	}
}

// TestExpandURL: no value can make a dot segment or a path separator, in
// the raw path or once a receiver decodes it, so a request never leaves the
// path its template fixes; everything else passes as Expand writes it.
func TestExpandURL(t *testing.T) {
	t.Parallel()
	const tpl = "http://fn/api/{hub}/{category}/{event}"
	tests := []struct {
		name, tpl, event string
		want             string // the URL; "" means refused with ErrRefused
	}{
		{"plain", tpl, "SendMessage", "http://fn/api/chat/messages/SendMessage"},
		{"space", tpl, "Send It", "http://fn/api/chat/messages/Send%20It"},
		{"three dots are a name", tpl, "...", "http://fn/api/chat/messages/..."},
		{"dots inside a name", tpl, "a..b", "http://fn/api/chat/messages/a..b"},
		{"escaped dot stays one decode deep", tpl, "%2e%2e", "http://fn/api/chat/messages/%252e%252e"},
		{"empty value keeps its segment", tpl, "", "http://fn/api/chat/messages/"},
		{"dot", tpl, ".", ""},
		{"dot dot", tpl, "..", ""},
		{"slash", tpl, "a/b", ""},
		{"climbing with slashes", tpl, "../../admin", ""},
		{"backslash", tpl, `..\..`, ""},
		{"backslash alone", tpl, `a\b`, ""},
		{"dot joins the template's dot", "http://fn/api/.{event}", ".", ""},
		{"value joins the template's dot", "http://fn/api/{event}.", ".", ""},
		{"empty value leaves the template's dot", "http://fn/api/.{event}", "", ""},
		{"doubled placeholder", "http://fn/api/{event}{event}", ".", ""},
		{"doubled placeholder, a name", "http://fn/api/{event}{event}", "a", "http://fn/api/aa"},
		{"template's own dot segment is the admin's", "http://fn/api/../{event}", "x", "http://fn/api/../x"},
		{"value in the query cannot climb", "http://fn/api?e={event}", "../..", "http://fn/api?e=..%2F.."},
		{"value in the query stays one value", "http://fn/api?code=KEY&event={event}", "x&code=attacker&admin=1",
			"http://fn/api?code=KEY&event=x%26code%3Dattacker%26admin%3D1"},
		{"value in the query: plus and space", "http://fn/api?event={event}", "a+b c", "http://fn/api?event=a%2Bb+c"},
		{"no placeholder", "http://fn/api", "..", "http://fn/api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ExpandURL(tt.tpl, "chat", upstream.CategoryMessages, tt.event)
			if tt.want == "" {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("ExpandURL(%q, %q) = %q, %v; want ErrRefused", tt.tpl, tt.event, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ExpandURL(%q, %q) = %q, %v; want %q", tt.tpl, tt.event, got, err, tt.want)
			}
		})
	}
}

// TestTemplateHost: the client's target never chooses the host.
func TestTemplateHost(t *testing.T) {
	t.Parallel()
	for _, tpl := range []string{"http://{event}.fn/api", "http://fn{event}/api", "https://fn:{category}/x"} {
		if err := ValidateTemplate(tpl); !errors.Is(err, ErrBadTemplate) {
			t.Errorf("ValidateTemplate(%q) = %v, want ErrBadTemplate", tpl, err)
		}
		if _, err := ExpandURL(tpl, "chat", upstream.CategoryMessages, "x"); !errors.Is(err, ErrBadTemplate) {
			t.Errorf("ExpandURL(%q) = %v, want ErrBadTemplate", tpl, err)
		}
	}
	if err := ValidateTemplate("http://{hub}.fn.example/api/{event}"); err != nil {
		t.Errorf("{hub} in the host: %v", err)
	}
}

// FuzzExpandURL checks ExpandURL against receivers, not against itself:
// whatever the value, an accepted URL's path, raw or decoded, cleaned the
// way a normalising receiver does (WHATWG's %2e dots and '\' included),
// stays one segment below the template's prefix; and every target that
// passes input.Target is accepted.
func FuzzExpandURL(f *testing.F) {
	for _, s := range []string{"SendMessage", ".", "..", "%2e%2E", ".%2e", "a/../..", `..\..`, "", " ", "\x00", "é", "?x=1#f", "%252e"} {
		f.Add(s)
	}
	const prefix = "/api/chat/messages/"
	f.Fuzz(func(t *testing.T, event string) {
		got, err := ExpandURL("http://fn/api/{hub}/{category}/{event}", "chat", upstream.CategoryMessages, event)
		if err != nil {
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("ExpandURL(%q): %v, want ErrRefused", event, err)
			}
			if input.Target(event) == nil {
				t.Fatalf("ExpandURL refused the valid target %q: %v", event, err)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("ExpandURL(%q) = %q, which does not parse: %v", event, got, err)
		}
		if u.Host != "fn" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("ExpandURL(%q) = %q: the value escaped its path segment", event, got)
		}
		whatwg := func(p string) string {
			segs := strings.Split(strings.ReplaceAll(p, `\`, "/"), "/")
			for i, s := range segs {
				switch strings.ToLower(s) {
				case "%2e":
					segs[i] = "."
				case "%2e%2e", ".%2e", "%2e.":
					segs[i] = ".."
				}
			}
			return strings.Join(segs, "/")
		}
		// WHATWG reads dots in the raw path; others decode once, then
		// normalise.
		for _, p := range []string{whatwg(u.EscapedPath()), strings.ReplaceAll(u.Path, `\`, "/")} {
			clean := path.Clean(p)
			if clean != strings.TrimSuffix(prefix, "/") && (!strings.HasPrefix(clean, prefix) || strings.Contains(clean[len(prefix):], "/")) {
				t.Fatalf("ExpandURL(%q) = %q: path %q normalises to %q, outside %s", event, got, p, clean, prefix)
			}
		}
	})
}
