package client

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNegotiateURL checks that any query survives the URLSearchParams
// re-serialisation: the pairs decode back to what they were, in order, with
// exactly one negotiateVersion.
func FuzzNegotiateURL(f *testing.F) {
	for _, q := range []string{
		"hub=chat", "hub=chat&asrs.op=%2Fchat&negotiateVersion=1&asrs_request_id=req1%3D",
		"a=b c~!()*", "a&&b=", "x=%zz%", "negotiateVersion=7", "é=%C3%A9&%FF=1", "",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if strings.ContainsAny(q, "#") {
			return // a fragment, not a query
		}
		in := parseSearchParams(q)
		got, err := negotiateURL("http://h/c/?" + q)
		if err != nil {
			return // url.Parse refused the query (e.g. control characters)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("negotiateURL(%q) = %q, which does not parse: %v", q, got, err)
		}
		if u.Path != "/c/negotiate" {
			t.Fatalf("path of %q = %q", got, u.Path)
		}
		out := parseSearchParams(u.RawQuery)
		versions := 0
		for _, p := range out {
			if p[0] == "negotiateVersion" {
				versions++
			}
		}
		hadVersion := false
		for _, p := range in {
			hadVersion = hadVersion || p[0] == "negotiateVersion"
		}
		if !hadVersion && versions != 1 {
			t.Fatalf("%q has %d negotiateVersion parameters, want 1", got, versions)
		}
		if !hadVersion {
			out = out[:len(out)-1]
		}
		if len(out) != len(in) {
			t.Fatalf("%q: %d pairs, want %d", got, len(out), len(in))
		}
		for i := range in {
			if in[i] != out[i] || !utf8.ValidString(out[i][0]+out[i][1]) {
				t.Fatalf("pair %d of %q = %q, want %q", i, got, out[i], in[i])
			}
		}
	})
}

// FuzzNegotiateAnswer feeds arbitrary negotiate answers to the loop's step:
// no panic, and an answer is either an error wrapping ErrNegotiate, a
// redirect to a non-empty URL, or a final answer (startTransport then
// chooses among its transports).
func FuzzNegotiateAnswer(f *testing.F) {
	for _, b := range []string{
		`{"error":"nope"}`, `{"url":"http://h/client/?hub=a","accessToken":"t"}`, `{"ProtocolVersion":"1.5"}`,
		`{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[{"transport":"WebSockets","transferFormats":["Text"]}]}`,
		`{"connectionId":"a","availableTransports":[{"transport":"WebSockets","transferFormats":["Text"]}]}`,
		`{"useStatefulReconnect":true}`, `{"url":0,"error":false}`, `{"url":{"a":1}}`, `{"negotiateVersion":"x"}`,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var obj map[string]json.RawMessage
		if json.Unmarshal(body, &obj) != nil {
			return
		}
		n := &negotiated{url: "http://h/start"}
		redirect, err := n.apply(obj)
		switch {
		case err != nil:
			if !errors.Is(err, ErrNegotiate) || redirect {
				t.Fatalf("apply(%s) = %v, %v", body, redirect, err)
			}
		case redirect:
			if n.url == "" || n.url == "http://h/start" && string(obj["url"]) != `"http://h/start"` {
				t.Fatalf("apply(%s) redirected to %q", body, n.url)
			}
		default:
			if n.url != "http://h/start" {
				t.Fatalf("apply(%s) changed the URL to %q without redirecting", body, n.url)
			}
		}
	})
}
