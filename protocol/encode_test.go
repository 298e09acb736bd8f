package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// hardStrings exercise the string escaper: every case JSON and JavaScript
// care about.
var hardStrings = []string{
	"",
	"plain",
	`quote " and backslash \ and slash /`,
	"control \x00\x01\x08\x0c\x1f\x1e\x7f \n\r\t",
	"line separators \u2028 and \u2029",
	"non-ASCII: é ü 日本語 🎉",
	"html <script>&amp;</script>",
	"invalid UTF-8: \xff\xfe \xc3 \xe2\x80",
	"surrogate half \xed\xa0\x80",
}

// wantString is what a string reads back as after a JSON round trip:
// encoding/json's conversion of invalid UTF-8 to U+FFFD.
func wantString(s string) string { return string([]rune(s)) }

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range hardStrings {
		tests := []struct {
			name string
			enc  []byte
			want Message
		}{
			{"invocation", AppendInvocation(nil, s+"id", s+"target", json.RawMessage(`["a",{"b":[1]}]`)),
				Message{Type: TypeInvocation, InvocationID: wantString(s + "id"), HasInvocationID: true,
					Target: wantString(s + "target"), Arguments: raw(`["a",{"b":[1]}]`)}},
			{"invocation without id", AppendInvocation(nil, "", s+"t", nil),
				Message{Type: TypeInvocation, Target: wantString(s + "t"), Arguments: raw(`[]`)}},
			{"completion result", AppendCompletion(nil, s+"id", json.RawMessage(`{"x":"y"}`), ""),
				Message{Type: TypeCompletion, InvocationID: wantString(s + "id"), HasInvocationID: true, Result: raw(`{"x":"y"}`)}},
			{"completion error", AppendCompletion(nil, "1", json.RawMessage(`1`), s+"err"),
				Message{Type: TypeCompletion, InvocationID: "1", HasInvocationID: true, Error: wantString(s + "err")}},
			{"completion void", AppendCompletion(nil, s+"id", nil, ""),
				Message{Type: TypeCompletion, InvocationID: wantString(s + "id"), HasInvocationID: true}},
			{"stream item", AppendStreamItem(nil, s+"id", json.RawMessage(`"v"`)),
				Message{Type: TypeStreamItem, InvocationID: wantString(s + "id"), HasInvocationID: true, Item: raw(`"v"`)}},
			{"stream item nil", AppendStreamItem(nil, "1", nil),
				Message{Type: TypeStreamItem, InvocationID: "1", HasInvocationID: true, Item: raw(`null`)}},
			{"cancel", AppendCancelInvocation(nil, s+"id"),
				Message{Type: TypeCancelInvocation, InvocationID: wantString(s + "id"), HasInvocationID: true}},
			{"close", AppendClose(nil, s, true),
				Message{Type: TypeClose, Error: wantString(s), AllowReconnect: true}},
		}
		for _, tt := range tests {
			t.Run(tt.name+"/"+s, func(t *testing.T) {
				t.Parallel()
				var got []Message
				err := SplitMessages(tt.enc, func(msg []byte) error {
					if !json.Valid(msg) {
						t.Errorf("not valid JSON: %q", msg)
					}
					m, err := ParseMessage(msg)
					got = append(got, m)
					return err
				})
				if err != nil {
					t.Fatalf("decoding %q: %v", tt.enc, err)
				}
				if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
					t.Errorf("decoding %q\n got %+v\nwant %+v", tt.enc, got, tt.want)
				}
			})
		}
	}
}

func TestEncodeExactBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"invocation", AppendInvocation(nil, "7", "echo", json.RawMessage(`["hi"]`)),
			"{\"type\":1,\"invocationId\":\"7\",\"target\":\"echo\",\"arguments\":[\"hi\"]}\x1e"},
		{"send", AppendInvocation(nil, "", "push", nil), "{\"type\":1,\"target\":\"push\",\"arguments\":[]}\x1e"},
		{"completion", AppendCompletion(nil, "0", json.RawMessage(`42`), ""), "{\"type\":3,\"invocationId\":\"0\",\"result\":42}\x1e"},
		{"completion null result", AppendCompletion(nil, "0", json.RawMessage(`null`), ""), "{\"type\":3,\"invocationId\":\"0\",\"result\":null}\x1e"},
		{"completion error", AppendCompletion(nil, "0", json.RawMessage(`42`), "boom"), "{\"type\":3,\"invocationId\":\"0\",\"error\":\"boom\"}\x1e"},
		{"completion void", AppendCompletion(nil, "0", nil, ""), "{\"type\":3,\"invocationId\":\"0\"}\x1e"},
		{"stream item", AppendStreamItem(nil, "2", json.RawMessage(`1`)), "{\"type\":2,\"invocationId\":\"2\",\"item\":1}\x1e"},
		{"cancel", AppendCancelInvocation(nil, "2"), "{\"type\":5,\"invocationId\":\"2\"}\x1e"},
		{"ping", AppendPing(nil), "{\"type\":6}\x1e"},
		{"close", AppendClose(nil, "", false), "{\"type\":7}\x1e"},
		{"close error", AppendClose(nil, "bye", false), "{\"type\":7,\"error\":\"bye\"}\x1e"},
		{"close reconnect", AppendClose(nil, "bye", true), "{\"type\":7,\"error\":\"bye\",\"allowReconnect\":true}\x1e"},
		{"close reconnect no error", AppendClose(nil, "", true), "{\"type\":7,\"allowReconnect\":true}\x1e"},
		{"ack", AppendAck(nil, 5), "{\"type\":8,\"sequenceId\":5}\x1e"},
		{"sequence", AppendSequence(nil, 1), "{\"type\":9,\"sequenceId\":1}\x1e"},
		{"handshake request", AppendHandshakeRequest(nil, "json", 1), "{\"protocol\":\"json\",\"version\":1}\x1e"},
		{"handshake error", AppendHandshakeError(nil, `no "x"`), "{\"error\":\"no \\\"x\\\"\"}\x1e"},
		{"escapes", AppendPing(AppendCancelInvocation(nil, "\u2028\"\x01\n")),
			"{\"type\":5,\"invocationId\":\"\\u2028\\\"\\u0001\\n\"}\x1e{\"type\":6}\x1e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if string(tt.got) != tt.want {
				t.Errorf("got  %q\nwant %q", tt.got, tt.want)
			}
		})
	}
}

// TestEncodersProduceValidJSON checks every encoder against encoding/json
// with the hardest strings.
func TestEncodersProduceValidJSON(t *testing.T) {
	t.Parallel()
	for _, s := range hardStrings {
		frames := map[string][]byte{
			"invocation":      AppendInvocation(nil, s, s, json.RawMessage(`[1]`)),
			"completion":      AppendCompletion(nil, s, json.RawMessage(`{}`), ""),
			"completion err":  AppendCompletion(nil, s, nil, s+"x"),
			"stream item":     AppendStreamItem(nil, s, nil),
			"cancel":          AppendCancelInvocation(nil, s),
			"ping":            AppendPing(nil),
			"close":           AppendClose(nil, s, true),
			"ack":             AppendAck(nil, 1<<62),
			"sequence":        AppendSequence(nil, 0),
			"handshake":       AppendHandshakeRequest(nil, s, 2),
			"handshake error": AppendHandshakeError(nil, s),
		}
		for name, frame := range frames {
			if frame[len(frame)-1] != RecordSeparator {
				t.Errorf("%s(%q): no record separator at the end: %q", name, s, frame)
				continue
			}
			var v map[string]any
			if err := json.Unmarshal(frame[:len(frame)-1], &v); err != nil {
				t.Errorf("%s(%q): %q is not a JSON object: %v", name, s, frame, err)
			}
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	for _, s := range hardStrings {
		enc := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Errorf("appendJSONString(%q) = %s: %v", s, enc, err)
			continue
		}
		if got != wantString(s) {
			t.Errorf("appendJSONString(%q) reads back as %q, want %q", s, got, wantString(s))
		}
		for _, c := range []string{"\u2028", "\u2029", "\n", "\x00"} {
			if strings.Contains(string(enc), c) {
				t.Errorf("appendJSONString(%q) = %q contains raw %q", s, enc, c)
			}
		}
	}
	// The escaper must agree with encoding/json on invalid UTF-8, byte for
	// byte where encoding/json does not HTML-escape.
	for _, s := range []string{"\xff", "a\xc3", "\xed\xa0\x80z"} {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	}
}

func TestAppendInvocationAllocs(t *testing.T) {
	args := json.RawMessage(`["a fairly ordinary chat message with a quote \" in it",{"n":1}]`)
	dst := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		dst = AppendInvocation(dst[:0], "12", "newMessage\u2028é\n", args)
	})
	if allocs != 0 {
		t.Errorf("AppendInvocation allocates %v times per call with enough capacity, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		dst = AppendCompletion(dst[:0], "12", args, "")
		dst = AppendClose(dst, "bad \xff", true)
		dst = AppendPing(dst)
	})
	if allocs != 0 {
		t.Errorf("other encoders allocate %v times per call with enough capacity, want 0", allocs)
	}
}
