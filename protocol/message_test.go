package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// raw is a shorthand for json.RawMessage literals in wants.
func raw(s string) []byte { return []byte(s) }

// TestParseMessageJSClient decodes the exact bytes the official JS client
// 10.0.11 sends (reference/signalr-client.md §4).
func TestParseMessageJSClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Message
	}{
		{"invoke", `{"target":"echo","arguments":["hello",1],"invocationId":"0","type":1}`,
			Message{Type: TypeInvocation, Target: "echo", Arguments: raw(`["hello",1]`), InvocationID: "0", HasInvocationID: true}},
		{"send", `{"target":"triggerPush","arguments":[],"type":1}`,
			Message{Type: TypeInvocation, Target: "triggerPush", Arguments: raw(`[]`)}},
		{"stream", `{"target":"counter","arguments":[3],"invocationId":"2","type":4}`,
			Message{Type: TypeStreamInvocation, Target: "counter", Arguments: raw(`[3]`), InvocationID: "2", HasInvocationID: true}},
		{"cancel", `{"invocationId":"2","type":5}`,
			Message{Type: TypeCancelInvocation, InvocationID: "2", HasInvocationID: true}},
		{"upload", `{"target":"m","arguments":[],"invocationId":"5","streamIds":["4"],"type":1}`,
			Message{Type: TypeInvocation, Target: "m", Arguments: raw(`[]`), InvocationID: "5", HasInvocationID: true, StreamIDs: []string{"4"}}},
		{"upload item", `{"invocationId":"4","item":{"a":[1,"}"]},"type":2}`,
			Message{Type: TypeStreamItem, InvocationID: "4", HasInvocationID: true, Item: raw(`{"a":[1,"}"]}`)}},
		{"upload end", `{"invocationId":"4","type":3}`,
			Message{Type: TypeCompletion, InvocationID: "4", HasInvocationID: true}},
		{"client result", `{"invocationId":"srv-1","result":42,"type":3}`,
			Message{Type: TypeCompletion, InvocationID: "srv-1", HasInvocationID: true, Result: raw(`42`)}},
		{"client result null", `{"invocationId":"srv-1","result":null,"type":3}`,
			Message{Type: TypeCompletion, InvocationID: "srv-1", HasInvocationID: true, Result: raw(`null`)}},
		{"client result error", `{"error":"Client didn't provide a result.","invocationId":"srv-2","type":3}`,
			Message{Type: TypeCompletion, InvocationID: "srv-2", HasInvocationID: true, Error: "Client didn't provide a result."}},
		{"ping", `{"type":6}`, Message{Type: TypePing}},
		{"stop", `{"type":7}`, Message{Type: TypeClose}},
		{"close reconnect", `{"type":7,"error":"bye","allowReconnect":true}`,
			Message{Type: TypeClose, Error: "bye", AllowReconnect: true}},
		{"ack", `{"type":8,"sequenceId":12}`, Message{Type: TypeAck, SequenceID: 12}},
		{"sequence", `{"type":9,"sequenceId":1}`, Message{Type: TypeSequence, SequenceID: 1}},
		{"headers", `{"type":1,"target":"t","arguments":[],"headers":{"k":"v"}}`,
			Message{Type: TypeInvocation, Target: "t", Arguments: raw(`[]`), Headers: map[string]string{"k": "v"}}},
		{"spaces and unknown fields", " {\n\"x\" : {\"type\":2} , \"type\" : 1 ,\"target\":\"t\",\"arguments\": [ 1 ] } ",
			Message{Type: TypeInvocation, Target: "t", Arguments: raw(`[ 1 ]`)}},
		{"escaped name and value", `{"\u0074ype":1,"target":"a\"b\u00e9","arguments":[]}`,
			Message{Type: TypeInvocation, Target: "a\"bé", Arguments: raw(`[]`)}},
		{"duplicate key last wins", `{"type":1,"target":"a","target":"b","arguments":[]}`,
			Message{Type: TypeInvocation, Target: "b", Arguments: raw(`[]`)}},
		{"case-sensitive names", `{"type":1,"target":"a","Target":"b","arguments":[]}`,
			Message{Type: TypeInvocation, Target: "a", Arguments: raw(`[]`)}},
		{"null invocation id is absent", `{"type":1,"invocationId":null,"target":"a","arguments":[]}`,
			Message{Type: TypeInvocation, Target: "a", Arguments: raw(`[]`)}},
		{"unknown type with odd fields", `{"type":42,"whatever":["}]"],"target":[]}`, Message{Type: 42}},
		{"unknown type high", `{"type":10,"target":5}`, Message{Type: 10}},
		{"unknown type zero", `{"type":0}`, Message{Type: 0}},
		{"unknown type negative", `{"type":-3}`, Message{Type: -3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMessage([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseMessage(%s): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseMessage(%s)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseMessageMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string // want: the error text after the sentinel
	}{
		{"empty", ``, "not valid JSON"},
		{"garbage", `hello`, "not valid JSON"},
		{"truncated", `{"type":1,"target":"a"`, "not valid JSON"},
		{"trailing", `{"type":6}{"type":6}`, "not valid JSON"},
		{"array", `[1]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"string", `"type"`, "not a JSON object"},
		{"no type", `{"target":"a"}`, `"type" is missing`},
		{"type string", `{"type":"1"}`, `"type" must be an integer`},
		{"type float", `{"type":1.0}`, `"type" must be an integer`},
		{"type exponent", `{"type":1e0}`, `"type" must be an integer`},
		{"type null", `{"type":null}`, `"type" must be an integer`},
		{"type overflow", `{"type":99999999999999999999}`, `"type" must be an integer`},
		{"type wrong case", `{"Type":6}`, `"type" is missing`},
		{"invocation no target", `{"type":1,"arguments":[]}`, `invocation: "target" must be a non-empty string`},
		{"invocation empty target", `{"type":1,"target":"","arguments":[]}`, `invocation: "target" must be a non-empty string`},
		{"invocation target number", `{"type":1,"target":5,"arguments":[]}`, `invocation: "target" must be a non-empty string`},
		{"invocation no arguments", `{"type":1,"target":"a"}`, `invocation: "arguments" must be an array`},
		{"invocation arguments object", `{"type":1,"target":"a","arguments":{}}`, `invocation: "arguments" must be an array`},
		{"invocation arguments null", `{"type":1,"target":"a","arguments":null}`, `invocation: "arguments" must be an array`},
		{"invocation empty id", `{"type":1,"invocationId":"","target":"a","arguments":[]}`, `invocation: "invocationId" must be a non-empty string`},
		{"invocation id number", `{"type":1,"invocationId":1,"target":"a","arguments":[]}`, `invocation: "invocationId" must be a non-empty string`},
		{"invocation stream ids", `{"type":1,"target":"a","arguments":[],"streamIds":[1]}`, `invocation: "streamIds" must be an array of strings`},
		{"invocation stream ids object", `{"type":1,"target":"a","arguments":[],"streamIds":{}}`, `invocation: "streamIds" must be an array of strings`},
		{"invocation headers", `{"type":1,"target":"a","arguments":[],"headers":{"a":1}}`, `invocation: "headers" must be an object of strings`},
		{"invocation headers array", `{"type":1,"target":"a","arguments":[],"headers":[]}`, `invocation: "headers" must be an object of strings`},
		{"stream invocation no id", `{"type":4,"target":"a","arguments":[]}`, `stream invocation: "invocationId" is missing`},
		{"stream invocation no arguments", `{"type":4,"invocationId":"1","target":"a"}`, `stream invocation: "arguments" must be an array`},
		{"stream item no id", `{"type":2,"item":1}`, `stream item: "invocationId" is missing`},
		{"stream item no item", `{"type":2,"invocationId":"1"}`, `stream item: "item" is missing`},
		{"completion no id", `{"type":3,"result":1}`, `completion: "invocationId" is missing`},
		{"completion both", `{"type":3,"invocationId":"1","result":1,"error":"x"}`, `completion: "result" and "error" are mutually exclusive`},
		{"completion error number", `{"type":3,"invocationId":"1","error":1}`, `completion: "error" must be a string`},
		{"cancel no id", `{"type":5}`, `cancel invocation: "invocationId" is missing`},
		{"close error object", `{"type":7,"error":{}}`, `close: "error" must be a string`},
		{"close allowReconnect string", `{"type":7,"allowReconnect":"true"}`, `close: "allowReconnect" must be a boolean`},
		{"ack no id", `{"type":8}`, `ack: "sequenceId" must be a non-negative integer`},
		{"ack string id", `{"type":8,"sequenceId":"1"}`, `ack: "sequenceId" must be a non-negative integer`},
		{"sequence negative", `{"type":9,"sequenceId":-1}`, `sequence: "sequenceId" must be a non-negative integer`},
		{"sequence float", `{"type":9,"sequenceId":1.5}`, `sequence: "sequenceId" must be a non-negative integer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseMessage([]byte(tt.in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseMessage(%s) = %v, want ErrMalformed", tt.in, err)
			}
			if want := ErrMalformed.Error() + ": " + tt.want; err.Error() != want {
				t.Errorf("ParseMessage(%s) error\n got %q\nwant %q", tt.in, err, want)
			}
		})
	}
}

// TestParseMessageNoAlias checks that a decoded Message survives the reuse
// of the input buffer, as transports do.
func TestParseMessageNoAlias(t *testing.T) {
	t.Parallel()
	in := []byte(`{"type":3,"invocationId":"1","result":[1,2]}`)
	m, err := ParseMessage(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = ' '
	}
	if string(m.Result) != "[1,2]" {
		t.Errorf("Result after reuse of the input = %q, want [1,2]", m.Result)
	}
	// Appending to one raw field must not clobber the rest of the message.
	m2, err := ParseMessage([]byte(`{"type":1,"arguments":[1],"target":"abc"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(m2.Arguments, "xxxxxxxxxxxx"...)
	if cap(m2.Arguments) != len(m2.Arguments) {
		t.Errorf("cap(Arguments) = %d, want %d", cap(m2.Arguments), len(m2.Arguments))
	}
}

func TestSplitMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		frame   string
		want    []string
		wantErr error
	}{
		{"one", "{\"type\":6}\x1e", []string{`{"type":6}`}, nil},
		{"three", "{\"type\":6}\x1e{\"type\":1,\"target\":\"a\",\"arguments\":[]}\x1e{\"type\":7}\x1e",
			[]string{`{"type":6}`, `{"type":1,"target":"a","arguments":[]}`, `{"type":7}`}, nil},
		{"empty frame", "", nil, ErrIncomplete},
		{"no separator", `{"type":6}`, nil, ErrIncomplete},
		{"last incomplete", "{\"type\":6}\x1e{\"type\":6}", nil, ErrIncomplete},
		{"only separator", "\x1e", nil, ErrMalformed},
		{"empty in the middle", "{\"type\":6}\x1e\x1e{\"type\":6}\x1e", nil, ErrMalformed},
		{"empty at the start", "\x1e{\"type\":6}\x1e", nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			err := SplitMessages([]byte(tt.frame), func(msg []byte) error {
				got = append(got, string(msg))
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("SplitMessages(%q) error = %v, want %v", tt.frame, err, tt.wantErr)
			}
			if err != nil && got != nil {
				t.Errorf("SplitMessages(%q) called fn %d times before failing, want 0", tt.frame, len(got))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitMessages(%q) = %q, want %q", tt.frame, got, tt.want)
			}
		})
	}
}

func TestSplitMessagesStopsAtCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	calls := 0
	err := SplitMessages([]byte("a\x1eb\x1ec\x1e"), func(msg []byte) error {
		calls++
		if string(msg) == "b" {
			return stop
		}
		return nil
	})
	if err != stop || calls != 2 {
		t.Errorf("got err %v after %d calls, want %v after 2", err, calls, stop)
	}
}

// TestFrameOfManyMessages decodes a frame like the ones the JS client's send
// queue produces: several messages concatenated.
func TestFrameOfManyMessages(t *testing.T) {
	t.Parallel()
	frame := "{\"invocationId\":\"srv-1\",\"result\":42,\"type\":3}\x1e" +
		"{\"error\":\"Client didn't provide a result.\",\"invocationId\":\"srv-2\",\"type\":3}\x1e" +
		"{\"type\":6}\x1e"
	var types []int
	var ids []string
	err := SplitMessages([]byte(frame), func(msg []byte) error {
		m, err := ParseMessage(msg)
		if err != nil {
			return err
		}
		types = append(types, m.Type)
		ids = append(ids, m.InvocationID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3, 3, 6}; !reflect.DeepEqual(types, want) {
		t.Errorf("types = %v, want %v", types, want)
	}
	if want := []string{"srv-1", "srv-2", ""}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %q, want %q", ids, want)
	}
	if err := SplitMessages([]byte(frame+"{}\x1e"), func(msg []byte) error {
		_, err := ParseMessage(msg)
		return err
	}); err == nil || !strings.Contains(err.Error(), `"type" is missing`) {
		t.Errorf("frame with a typeless message: err = %v, want \"type\" is missing", err)
	}
}
