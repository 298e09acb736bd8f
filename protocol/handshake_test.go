package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseHandshakeRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		frame    string
		want     HandshakeRequest
		wantRest string
		wantErr  string // the text after "protocol: bad handshake: "; "" for success
	}{
		{name: "js client json v1", frame: "{\"protocol\":\"json\",\"version\":1}\x1e",
			want: HandshakeRequest{"json", 1}},
		{name: "stateful reconnect v2", frame: "{\"protocol\":\"json\",\"version\":2}\x1e",
			want: HandshakeRequest{"json", 2}},
		{name: "messages follow", frame: "{\"version\":1,\"protocol\":\"json\"}\x1e{\"type\":6}\x1e",
			want: HandshakeRequest{"json", 1}, wantRest: "{\"type\":6}\x1e"},
		{name: "spaces and extra fields", frame: " { \"protocol\" : \"json\" , \"version\" : 1, \"x\":[1] } \x1e",
			want: HandshakeRequest{"json", 1}},
		{name: "empty", frame: "", wantErr: "handshake is incomplete"},
		{name: "no separator", frame: `{"protocol":"json","version":1}`, wantErr: "handshake is incomplete"},
		{name: "bad JSON", frame: "{\"protocol\":\"json\",\x1e", wantErr: "handshake is not a JSON object"},
		{name: "null", frame: "null\x1e", wantErr: "handshake is not a JSON object"},
		{name: "array", frame: "[]\x1e", wantErr: "handshake is not a JSON object"},
		{name: "no protocol", frame: "{\"version\":1}\x1e", wantErr: `"protocol" is missing`},
		{name: "wrong case", frame: "{\"Protocol\":\"json\",\"version\":1}\x1e", wantErr: `"protocol" is missing`},
		{name: "protocol number", frame: "{\"protocol\":1,\"version\":1}\x1e", wantErr: `"protocol" must be a non-empty string`},
		{name: "protocol empty", frame: "{\"protocol\":\"\",\"version\":1}\x1e", wantErr: `"protocol" must be a non-empty string`},
		{name: "messagepack", frame: "{\"protocol\":\"messagepack\",\"version\":1}\x1e", want: HandshakeRequest{"messagepack", 1}},
		{name: "unknown protocol", frame: "{\"protocol\":\"xml\",\"version\":1}\x1e", wantErr: `unsupported protocol "xml"`},
		{name: "odd protocol quoted", frame: "{\"protocol\":\"a\\\"b\\n\",\"version\":1}\x1e", wantErr: `unsupported protocol "a\"b\n"`},
		// The name reaches logs and trace spans: it is cut, not echoed whole.
		{name: "long protocol cut", frame: "{\"protocol\":\"" + strings.Repeat("x", 10000) + "\",\"version\":1}\x1e",
			wantErr: `unsupported protocol "` + strings.Repeat("x", 40) + `"…`},
		{name: "no version", frame: "{\"protocol\":\"json\"}\x1e", wantErr: `"version" is missing`},
		{name: "version string", frame: "{\"protocol\":\"json\",\"version\":\"1\"}\x1e", wantErr: `"version" must be an integer`},
		{name: "version float", frame: "{\"protocol\":\"json\",\"version\":1.5}\x1e", wantErr: `"version" must be an integer`},
		{name: "version 0", frame: "{\"protocol\":\"json\",\"version\":0}\x1e", wantErr: "version 0 of the json protocol is not supported"},
		{name: "version 3", frame: "{\"protocol\":\"json\",\"version\":3}\x1e", wantErr: "version 3 of the json protocol is not supported"},
		{name: "version huge", frame: "{\"protocol\":\"json\",\"version\":9223372036854775807}\x1e",
			wantErr: "version 9223372036854775807 of the json protocol is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, rest, err := ParseHandshakeRequest([]byte(tt.frame))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrHandshake) {
					t.Fatalf("err = %v, want ErrHandshake", err)
				}
				if want := ErrHandshake.Error() + ": " + tt.wantErr; err.Error() != want {
					t.Errorf("err = %q, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHandshakeRequest(%q): %v", tt.frame, err)
			}
			if got != tt.want || string(rest) != tt.wantRest {
				t.Errorf("got %+v, rest %q; want %+v, rest %q", got, rest, tt.want, tt.wantRest)
			}
		})
	}
}

func TestParseHandshakeResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		frame    string
		wantRest string
		wantIs   error
		wantErr  string
	}{
		{name: "ok", frame: "{}\x1e"},
		{name: "ok with messages", frame: "{}\x1e{\"type\":1,\"target\":\"welcome\",\"arguments\":[]}\x1e",
			wantRest: "{\"type\":1,\"target\":\"welcome\",\"arguments\":[]}\x1e"},
		{name: "extra properties", frame: "{\"minorVersion\":1}\x1e"},
		{name: "null error", frame: "{\"error\":null}\x1e"},
		{name: "empty error", frame: "{\"error\":\"\"}\x1e"},
		{name: "rejected", frame: "{\"error\":\"Unauthorized \\\"x\\\"\"}\x1e",
			wantIs: ErrHandshakeRejected, wantErr: "protocol: handshake rejected: Unauthorized \"x\""},
		{name: "incomplete", frame: "{}", wantIs: ErrHandshake, wantErr: "protocol: bad handshake: handshake response is incomplete"},
		{name: "not JSON", frame: "{\x1e", wantIs: ErrHandshake, wantErr: "protocol: bad handshake: handshake response is not a JSON object"},
		{name: "hub message", frame: "{\"type\":6}\x1e", wantIs: ErrHandshake,
			wantErr: "protocol: bad handshake: expected a handshake response from the server"},
		{name: "error number", frame: "{\"error\":5}\x1e", wantIs: ErrHandshake,
			wantErr: "protocol: bad handshake: handshake response \"error\" must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rest, err := ParseHandshakeResponse([]byte(tt.frame))
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q wrapping %v", err, tt.wantErr, tt.wantIs)
				}
				return
			}
			if err != nil || string(rest) != tt.wantRest {
				t.Errorf("got rest %q, err %v; want rest %q", rest, err, tt.wantRest)
			}
		})
	}
}

// TestHandshakeBothWays runs each side's encoder through the other side's
// parser.
func TestHandshakeBothWays(t *testing.T) {
	t.Parallel()
	req, rest, err := ParseHandshakeRequest(AppendHandshakeRequest(nil, "json", 2))
	if err != nil || req != (HandshakeRequest{"json", 2}) || len(rest) != 0 {
		t.Errorf("request round trip: %+v, %q, %v", req, rest, err)
	}
	if rest, err := ParseHandshakeResponse(HandshakeOK); err != nil || len(rest) != 0 {
		t.Errorf("HandshakeOK: rest %q, err %v", rest, err)
	}
	for _, msg := range hardStrings[1:] { // "" would mean success
		_, err := ParseHandshakeResponse(AppendHandshakeError(nil, msg))
		if want := ErrHandshakeRejected.Error() + ": " + wantString(msg); !errors.Is(err, ErrHandshakeRejected) || err.Error() != want {
			t.Errorf("AppendHandshakeError(%q) parses as %v, want %q", msg, err, want)
		}
	}
	// The server's rejection text round-trips to the client.
	_, _, herr := ParseHandshakeRequest([]byte("{\"protocol\":\"xml\",\"version\":1}\x1e"))
	_, err = ParseHandshakeResponse(AppendHandshakeError(nil, herr.Error()))
	if !bytes.Contains([]byte(err.Error()), []byte(`unsupported protocol "xml"`)) {
		t.Errorf("client sees %q", err)
	}
}
