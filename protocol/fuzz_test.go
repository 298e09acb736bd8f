package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

var messageSeeds = []string{
	`{"target":"echo","arguments":["hello",1],"invocationId":"0","type":1}`,
	`{"target":"triggerPush","arguments":[],"type":1}`,
	`{"target":"counter","arguments":[3],"invocationId":"2","type":4}`,
	`{"invocationId":"2","type":5}`,
	`{"target":"m","arguments":[],"invocationId":"5","streamIds":["4"],"type":1,"headers":{"a":"b"}}`,
	`{"invocationId":"4","item":{"a":"}]"},"type":2}`,
	`{"invocationId":"srv-1","result":42,"type":3}`,
	`{"error":"Client didn't provide a result.","invocationId":"srv-2","type":3}`,
	`{"type":6}`, `{"type":7}`, `{"type":7,"error":"x","allowReconnect":true}`,
	`{"type":8,"sequenceId":1}`, `{"type":9,"sequenceId":-1}`,
	`{"\u0074ype":1,"target":"\ud83c\udf89","arguments":[]}`,
	`{"type":1e3}`, `{"type":99}`, `[]`, `null`, ``, "{\"type\":1,\"target\":\"\xff\",\"arguments\":[]}",
}

// FuzzParseMessage checks that ParseMessage never panics and that a nil
// error means the Message is consistent with its type.
func FuzzParseMessage(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := ParseMessage(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !json.Valid(msg) {
			t.Fatalf("accepted invalid JSON %q", msg)
		}
		isArray := func(r json.RawMessage) bool { return len(r) > 0 && r[0] == '[' && json.Valid(r) }
		if m.HasInvocationID != (m.InvocationID != "") {
			t.Fatalf("HasInvocationID %v with id %q", m.HasInvocationID, m.InvocationID)
		}
		for _, r := range []json.RawMessage{m.Arguments, m.Item, m.Result} {
			if r != nil && !json.Valid(r) {
				t.Fatalf("raw field %q is not valid JSON", r)
			}
		}
		switch m.Type {
		case TypeInvocation, TypeStreamInvocation:
			if m.Target == "" || !isArray(m.Arguments) {
				t.Fatalf("invocation accepted with target %q, arguments %q", m.Target, m.Arguments)
			}
			if m.Type == TypeStreamInvocation && !m.HasInvocationID {
				t.Fatal("stream invocation accepted without id")
			}
		case TypeStreamItem:
			if !m.HasInvocationID || m.Item == nil {
				t.Fatalf("stream item accepted: %+v", m)
			}
		case TypeCompletion:
			if !m.HasInvocationID || (m.Result != nil && m.Error != "") {
				t.Fatalf("completion accepted: %+v", m)
			}
		case TypeCancelInvocation:
			if !m.HasInvocationID {
				t.Fatal("cancel accepted without id")
			}
		case TypeAck, TypeSequence:
			if m.SequenceID < 0 {
				t.Fatalf("negative sequence id accepted: %d", m.SequenceID)
			}
		}
		if m.Type < TypeInvocation || m.Type > TypeSequence {
			if !onlyType(m) {
				t.Fatalf("unknown type %d decoded more than its type: %+v", m.Type, m)
			}
		}
		// What decodes must survive re-encoding where an encoder exists.
		if m.Type == TypeInvocation && utf8.ValidString(m.Target) {
			back, err := ParseMessage(bytes.TrimSuffix(AppendInvocation(nil, m.InvocationID, m.Target, m.Arguments), []byte{RecordSeparator}))
			if err != nil || back.Target != m.Target || back.InvocationID != m.InvocationID || !bytes.Equal(back.Arguments, m.Arguments) {
				t.Fatalf("re-encoded invocation differs: %+v, %v", back, err)
			}
		}
	})
}

// onlyType reports whether m has nothing but Type set.
func onlyType(m Message) bool {
	return m.InvocationID == "" && !m.HasInvocationID && m.Target == "" && m.Arguments == nil &&
		m.StreamIDs == nil && m.Item == nil && m.Result == nil && m.Error == "" &&
		!m.AllowReconnect && m.SequenceID == 0 && m.Headers == nil
}

// FuzzSplitMessages checks that SplitMessages either rejects a frame without
// calling fn or hands out non-empty messages that rebuild the frame.
func FuzzSplitMessages(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add([]byte(s + "\x1e"))
	}
	f.Add([]byte("{\"type\":6}\x1e{\"type\":7}\x1e"))
	f.Add([]byte("\x1e\x1e"))
	f.Add([]byte("a\x1e\x1eb\x1e"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var rebuilt []byte
		calls := 0
		err := SplitMessages(frame, func(msg []byte) error {
			calls++
			if len(msg) == 0 || bytes.IndexByte(msg, RecordSeparator) >= 0 {
				t.Fatalf("bad message %q", msg)
			}
			rebuilt = append(append(rebuilt, msg...), RecordSeparator)
			return nil
		})
		if err != nil {
			if calls != 0 {
				t.Fatalf("fn called %d times on a rejected frame", calls)
			}
			if !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !bytes.Equal(rebuilt, frame) {
			t.Fatalf("messages rebuild %q, want %q", rebuilt, frame)
		}
	})
}

// FuzzParseHandshakeRequest checks that the handshake parser never panics
// and only accepts supported protocols with rest being the frame's tail.
func FuzzParseHandshakeRequest(f *testing.F) {
	f.Add([]byte("{\"protocol\":\"json\",\"version\":1}\x1e"))
	f.Add([]byte("{\"protocol\":\"json\",\"version\":2}\x1e{\"type\":6}\x1e"))
	f.Add([]byte("{\"protocol\":\"messagepack\",\"version\":1}\x1e"))
	f.Add([]byte("{\"protocol\":\"json\",\"version\":3}\x1e"))
	f.Add([]byte("{\"protocol\":\"json\"}"))
	f.Add([]byte("null\x1e"))
	f.Add([]byte("\x1e"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, rest, err := ParseHandshakeRequest(frame)
		if err != nil {
			if !errors.Is(err, ErrHandshake) {
				t.Fatalf("error %v does not wrap ErrHandshake", err)
			}
			return
		}
		if _, ok := CodecFor(req.Protocol); !ok || req.Version < 1 || req.Version > 2 {
			t.Fatalf("accepted %+v", req)
		}
		if !bytes.HasSuffix(frame, rest) || bytes.IndexByte(frame, RecordSeparator) != len(frame)-len(rest)-1 {
			t.Fatalf("rest %q is not what follows the first separator in %q", rest, frame)
		}
	})
}

// FuzzJSONString checks that the escaper's output always reads back as its
// input (for valid UTF-8; invalid bytes read back as U+FFFD).
func FuzzJSONString(f *testing.F) {
	for _, s := range hardStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := appendJSONString([]byte("x"), s)[1:]
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("appendJSONString(%q) = %q: %v", s, enc, err)
		}
		if got != wantString(s) {
			t.Fatalf("appendJSONString(%q) reads back as %q", s, got)
		}
		if !utf8.Valid(enc) || bytes.ContainsAny(enc, "\u2028\u2029") {
			t.Fatalf("appendJSONString(%q) = %q: invalid UTF-8 or raw line separator", s, enc)
		}
	})
}

// FuzzSplitArray checks that SplitArray never panics, and that on a valid
// JSON array it gives exactly json.Unmarshal's elements.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, ` [ ] `, `["hello",1]`, `[{"a":"}]"},[1,[2]],"\"]",null,true,-1.5e3]`,
		`[ 1 , 2 ]`, `null`, `{}`, `[`, `[1 2]`, `[,,]`, `["\u00e9\ud83c\udf89"]`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, arr []byte) {
		elems, ok := SplitArray(arr)
		if !json.Valid(arr) {
			return // only "never panics" is promised
		}
		var want []json.RawMessage
		isArray := bytes.HasPrefix(bytes.TrimLeft(arr, " \t\r\n"), []byte("["))
		if !isArray {
			if ok {
				t.Fatalf("SplitArray(%q) reports an array", arr)
			}
			return
		}
		if err := json.Unmarshal(arr, &want); err != nil {
			t.Fatalf("json.Unmarshal(%q): %v", arr, err)
		}
		if !ok || len(elems) != len(want) || elems == nil {
			t.Fatalf("SplitArray(%q) = %q, %v; want %q", arr, elems, ok, want)
		}
		for i := range want {
			if !bytes.Equal(elems[i], want[i]) || cap(elems[i]) != len(elems[i]) {
				t.Fatalf("SplitArray(%q)[%d] = %q (cap %d), want %q", arr, i, elems[i], cap(elems[i]), want[i])
			}
		}
	})
}
