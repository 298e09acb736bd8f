package delivery

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/input"
	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/upstream"
)

// TestAzureSignatureVector checks X-ASRS-Signature against the vector of
// the Azure Functions SignalR extension's own tests
// (SignalRTriggerResolverTests.cs): HMAC-SHA256 of the connection id keyed
// with the access key's UTF-8 bytes, both keys in one header.
func TestAzureSignatureVector(t *testing.T) {
	got := AzureSignature([]string{"7aab239577fd4f24bc919802fb629f5f", "a5f2815d0d0c4b00bd27e832432f91ab"}, "0f9c97a2f0bf4706afe87a14e0797b11")
	want := "sha256=7767effcb3946f3e1de039df4b986ef02c110b1469d02c0a06f41b3b727ab561," +
		"sha256=d4aefb65547a00a9881fa8ac8bd03d0faf77af9da5205d45c6e57cbda4377760"
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestAzureRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                  string
		hub, category, event  string
		evHub, evName, target string
		want                  bool
	}{
		{"any takes connected", "*", "*", "*", "chat", "connected", "", true},
		{"any takes a message", "", "", "", "chat", "message", "Broadcast", true},
		{"any leaves connect out", "*", "*", "*", "chat", "connect", "", false},
		{"connect when named", "*", "connections", "connect,connected", "chat", "connect", "", true},
		{"hub list", "news, chat", "*", "*", "Chat", "connected", "", true},
		{"other hub", "news", "*", "*", "chat", "connected", "", false},
		{"category messages only", "*", "messages", "*", "chat", "disconnected", "", false},
		{"event names a target", "*", "messages", "broadcast", "chat", "message", "BROADCAST", true},
		{"event names another target", "*", "messages", "broadcast", "chat", "message", "echo", false},
		{"event pattern on connections", "*", "*", "disconnected", "chat", "connected", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseAzureRules(tt.hub, tt.category, tt.event)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Match(tt.evHub, tt.evName, tt.target); got != tt.want {
				t.Errorf("Match(%s, %s, %s) = %v, want %v", tt.evHub, tt.evName, tt.target, got, tt.want)
			}
		})
	}
}

func TestAzureRulesRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ hub, category, event string }{
		{"a,,b", "*", "*"},
		{"*", "users", "*"},
		{"*", "*", "conn*"},
		{"a\nb", "*", "*"},
		{"*", "*", strings.Repeat("e", maxPattern+1)},
	} {
		if _, err := ParseAzureRules(tt.hub, tt.category, tt.event); err == nil {
			t.Errorf("ParseAzureRules(%q, %q, %q) accepted", tt.hub, tt.category, tt.event)
		}
	}
}

// TestAzureReasonClientClosed keeps the disconnected body's clean-close
// case tied to the gateway's reason.
func TestAzureReasonClientClosed(t *testing.T) {
	if reasonClientClosed != gateway.ReasonClientClosed {
		t.Errorf("reasonClientClosed = %q, gateway says %q", reasonClientClosed, gateway.ReasonClientClosed)
	}
}

func TestAzureBodies(t *testing.T) {
	t.Parallel()
	id := "7"
	user := "ann"
	tests := []struct {
		name        string
		ev          upstream.Event
		want        string
		contentType string
	}{
		{"connected", upstream.Event{Event: upstream.EventConnected}, `{"type":10}`, azureJSON},
		{"disconnected clean", upstream.Event{Event: upstream.EventDisconnected, Reason: gateway.ReasonClientClosed}, `{"type":11}`, azureJSON},
		{"disconnected error", upstream.Event{Event: upstream.EventDisconnected, Reason: "connection lost: EOF"}, `{"type":11,"error":"connection lost: EOF"}`, azureJSON},
		{"invoke json", upstream.Event{Event: upstream.EventMessage, InvocationID: &id, Target: "echo", Arguments: json.RawMessage(`["hi",1]`)},
			`{"type":1,"invocationId":"7","target":"echo","arguments":["hi",1]}`, azureJSON},
		{"send json", upstream.Event{Event: upstream.EventMessage, Target: "echo", Arguments: json.RawMessage(`[]`), UserID: &user},
			`{"type":1,"target":"echo","arguments":[]}`, azureJSON},
		{"connect", upstream.Event{Event: upstream.EventConnect, Client: upstream.ClientInfo{Claims: json.RawMessage(`{"role":["a","b"],"n":3}`)}},
			`{"claims":{"n":["3"],"role":["a","b"]},"query":{},"headers":{},"subprotocols":[]}`, azureJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := azureJSON
			got, err := azureBody(&tt.ev, &ct)
			if err != nil || string(got) != tt.want || ct != tt.contentType {
				t.Errorf("got %s (%s), %v; want %s (%s)", got, ct, err, tt.want, tt.contentType)
			}
		})
	}

	// MessagePack: the message without its length prefix, which parses back
	// to the same invocation.
	ev := upstream.Event{Event: upstream.EventMessage, InvocationID: &id, Target: "echo", Arguments: json.RawMessage(`["hi",1.5]`),
		Client: upstream.ClientInfo{Protocol: "messagepack"}}
	ct := azureJSON
	body, err := azureBody(&ev, &ct)
	if err != nil || ct != azureMsgpack {
		t.Fatalf("messagepack body: %v, %s", err, ct)
	}
	m, err := protocol.ParseBinaryMessage(body)
	if err != nil || m.Type != protocol.TypeInvocation || m.InvocationID != "7" || m.Target != "echo" || string(m.Arguments) != `["hi",1.5]` {
		t.Errorf("messagepack body parses to %+v, %v", m, err)
	}
}

func TestAzureClaimsHeader(t *testing.T) {
	t.Parallel()
	got := azureClaimsHeader(json.RawMessage(`{"sub":"ann","role":["admin","dev"],"exp":1700000000}`))
	if want := "exp: 1700000000, role: admin, role: dev, sub: ann"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// The header has no escaping, and the Functions extension splits it on
	// "," and then ": ", keeping a type's first value. A pair that would
	// read as other claims is left out; the rest read back as they were.
	got = azureClaimsHeader(json.RawMessage(`{"email":"x@y.z, role: admin","role":"user","a:b":"c","n,m":"o","name":"Ann: the first"}`))
	read := map[string]string{}
	for _, pair := range strings.Split(got, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(pair), ": ")
		if _, seen := read[name]; !seen {
			read[name] = value
		}
	}
	if want := map[string]string{"role": "user", "name": "Ann: the first"}; !maps.Equal(read, want) {
		t.Errorf("header %q reads as %v, want %v", got, read, want)
	}
	// None, and what is not an object (an outbox record of another shape),
	// give no header.
	for _, raw := range []string{"", "null", "[1]", `"x"`, "{"} {
		if got := azureClaimsHeader(json.RawMessage(raw)); got != "" {
			t.Errorf("claims %q: got %q", raw, got)
		}
	}
}

func TestAzureCompletion(t *testing.T) {
	t.Parallel()
	framed, err := protocol.AppendBinaryCompletion(nil, "1", json.RawMessage(`{"a":[1,"x"]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	var bare []byte
	_ = protocol.SplitBinaryMessages(framed, func(m []byte) error { bare = m; return nil })
	failed, _ := protocol.AppendBinaryCompletion(nil, "1", nil, "boom")
	tests := []struct {
		name, proto string
		body        []byte
		result      string
		errText     string
		bad         bool
	}{
		{"json framed", "json", []byte("{\"type\":3,\"invocationId\":\"1\",\"result\":42}\x1e"), "42", "", false},
		{"json bare", "json", []byte(`{"type":3,"invocationId":"1","result":"ok"}`), `"ok"`, "", false},
		{"json error", "json", []byte(`{"type":3,"invocationId":"1","error":"nope"}`), "", "nope", false},
		{"json void", "json", []byte(`{"type":3,"invocationId":"1"}`), "", "", false},
		{"json not a completion", "json", []byte(`{"type":1,"target":"x","arguments":[]}`), "", "", true},
		{"json garbage", "json", []byte(`hello`), "", "", true},
		{"msgpack framed", "messagepack", framed, `{"a":[1,"x"]}`, "", false},
		{"msgpack bare", "messagepack", bare, `{"a":[1,"x"]}`, "", false},
		{"msgpack error", "messagepack", failed, "", "boom", false},
		{"msgpack garbage", "messagepack", []byte{0xc1, 0x00}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := azureCompletion(tt.proto, tt.body)
			if tt.bad {
				if err == nil {
					t.Errorf("accepted: %+v", r)
				}
				return
			}
			if err != nil || string(r.Result) != tt.result || r.Error != tt.errText {
				t.Errorf("got %+v, %v; want result %s error %q", r, err, tt.result, tt.errText)
			}
		})
	}
}

// FuzzAzureCompletion: whatever an upstream answers an invocation with,
// reading it never panics, and what it accepts is a valid result (JSON) or
// an error text that passes input.Reason.
func FuzzAzureCompletion(f *testing.F) {
	framed, _ := protocol.AppendBinaryCompletion(nil, "1", json.RawMessage(`[1,"x",{"$binary":"AQID"}]`), "")
	f.Add(false, []byte("{\"type\":3,\"invocationId\":\"1\",\"result\":42}\x1e"))
	f.Add(false, []byte(`{"type":3,"invocationId":"1","error":"no"}`))
	f.Add(true, framed)
	f.Add(true, framed[1:])
	f.Fuzz(func(t *testing.T, msgpack bool, body []byte) {
		if len(body) == 0 {
			return // interpretAzure never reads an empty body
		}
		proto := "json"
		if msgpack {
			proto = "messagepack"
		}
		r, err := azureCompletion(proto, body)
		if err != nil {
			return
		}
		if r.Result != nil && !json.Valid(r.Result) {
			t.Errorf("result %q is not JSON", r.Result)
		}
		if r.Error != "" && input.Reason(r.Error) != nil {
			t.Errorf("error %q passed unchecked", r.Error)
		}
	})
}

// TestAzureRefusesBadHeaderValues: a value no header may carry (from an
// event stored before a rule existed) is refused before the request, never
// sent and never counted against the upstream.
func TestAzureRefusesBadHeaderValues(t *testing.T) {
	t.Parallel()
	rules, _ := ParseAzureRules("*", "*", "*")
	tg := Target{Hub: "chat", Name: "fn", URLTemplate: "http://127.0.0.1:1/{event}", Azure: &AzureUpstream{Rules: rules, AccessKeys: []string{"k"}}}
	user := "ann\r\nX-Evil: 1"
	ev := &upstream.Event{Hub: "chat", ConnectionID: "c", UserID: &user, Event: upstream.EventConnected}
	if _, err := prepare(tg, ev); !errors.Is(err, ErrRefused) {
		t.Errorf("prepare: %v, want ErrRefused", err)
	}
	ev.UserID = nil
	ev.Client.Claims = json.RawMessage(`{"role":"` + strings.Repeat("x", maxHeaderBytes) + `"}`)
	if _, err := prepare(tg, ev); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "X-ASRS-User-Claims") {
		t.Errorf("prepare with huge claims: %v, want ErrRefused naming the size", err)
	}
}
