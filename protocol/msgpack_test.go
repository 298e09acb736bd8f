package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBinaryMatchesTheStockClient: the bytes the stock JS client sends and
// accepts (shared/reference/signalr-client.md §5) decode and encode exactly.
func TestBinaryMatchesTheStockClient(t *testing.T) {
	t.Parallel()
	// invoke("echo", new Uint8Array([1,2,3]))
	frame := mustHex(t, "10 95 01 80 a1 30 a4 65 63 68 6f 91 c4 03 01 02 03")
	var got []Message
	if err := SplitBinaryMessages(frame, func(msg []byte) error {
		m, err := ParseBinaryMessage(msg)
		got = append(got, m)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := Message{Type: TypeInvocation, InvocationID: "0", HasInvocationID: true, Target: "echo", Arguments: json.RawMessage(`[{"$binary":"AQID"}]`)}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("parsed %+v, want %+v", got, want)
	}
	// The server's answer the client resolved to a Uint8Array.
	reply, err := AppendBinaryCompletion(nil, "0", json.RawMessage(`{"$binary":"AQID"}`), "")
	if err != nil || !bytes.Equal(reply, mustHex(t, "0b 95 03 80 a1 30 03 c4 03 01 02 03")) {
		t.Errorf("completion = % x, %v", reply, err)
	}
	// send("triggerPush"): no invocation id, no arguments.
	m, err := ParseBinaryMessage(mustHex(t, "95 01 80 c0 ab 74 72 69 67 67 65 72 50 75 73 68 90"))
	if err != nil || m.HasInvocationID || m.Target != "triggerPush" || string(m.Arguments) != "[]" {
		t.Errorf("send = %+v, %v", m, err)
	}
	if p := AppendBinaryPing(nil); !bytes.Equal(p, []byte{0x02, 0x91, 0x06}) {
		t.Errorf("ping = % x", p)
	}
	// The client's own Close: [7, nil].
	m, err = ParseBinaryMessage(mustHex(t, "92 07 c0"))
	if err != nil || m.Type != TypeClose || m.Error != "" {
		t.Errorf("close = %+v, %v", m, err)
	}
}

// TestBinaryRoundTrip: every message the gateway writes reads back the same.
func TestBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	args := json.RawMessage(`["hi",1,-2,3.5,true,null,{"a":[1,{"b":"c"}]},{"$binary":"AAEC/w=="}]`)
	tests := []struct {
		name string
		enc  func() ([]byte, error)
		want Message
	}{
		{"invocation", func() ([]byte, error) { return AppendBinaryInvocation(nil, "7", "news", args) },
			Message{Type: TypeInvocation, InvocationID: "7", HasInvocationID: true, Target: "news", Arguments: args}},
		{"send", func() ([]byte, error) { return AppendBinaryInvocation(nil, "", "news", nil) },
			Message{Type: TypeInvocation, Target: "news", Arguments: json.RawMessage(`[]`)}},
		{"result", func() ([]byte, error) { return AppendBinaryCompletion(nil, "1", json.RawMessage(`{"ok":true}`), "") },
			Message{Type: TypeCompletion, InvocationID: "1", HasInvocationID: true, Result: json.RawMessage(`{"ok":true}`)}},
		{"null result", func() ([]byte, error) { return AppendBinaryCompletion(nil, "1", json.RawMessage(`null`), "") },
			Message{Type: TypeCompletion, InvocationID: "1", HasInvocationID: true, Result: json.RawMessage(`null`)}},
		{"void", func() ([]byte, error) { return AppendBinaryCompletion(nil, "2", nil, "") },
			Message{Type: TypeCompletion, InvocationID: "2", HasInvocationID: true}},
		{"error", func() ([]byte, error) { return AppendBinaryCompletion(nil, "3", nil, "nope") },
			Message{Type: TypeCompletion, InvocationID: "3", HasInvocationID: true, Error: "nope"}},
		{"item", func() ([]byte, error) { return AppendBinaryStreamItem(nil, "4", json.RawMessage(`[1]`)) },
			Message{Type: TypeStreamItem, InvocationID: "4", HasInvocationID: true, Item: json.RawMessage(`[1]`)}},
		{"cancel", func() ([]byte, error) { return AppendBinaryCancelInvocation(nil, "5"), nil },
			Message{Type: TypeCancelInvocation, InvocationID: "5", HasInvocationID: true}},
		{"ping", func() ([]byte, error) { return AppendBinaryPing(nil), nil }, Message{Type: TypePing}},
		{"close", func() ([]byte, error) { return AppendBinaryClose(nil, "bye", true), nil },
			Message{Type: TypeClose, Error: "bye", AllowReconnect: true}},
		{"ack", func() ([]byte, error) { return AppendBinaryAck(nil, 1<<40), nil }, Message{Type: TypeAck, SequenceID: 1 << 40}},
		{"sequence", func() ([]byte, error) { return AppendBinarySequence(nil, 3), nil }, Message{Type: TypeSequence, SequenceID: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, err := tt.enc()
			if err != nil {
				t.Fatal(err)
			}
			var got []Message
			if err := SplitBinaryMessages(frame, func(msg []byte) error {
				m, err := ParseBinaryMessage(msg)
				got = append(got, m)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestValuesAgainstAnotherImplementation checks the conversion both ways
// against github.com/vmihailenco/msgpack, written independently of ours.
func TestValuesAgainstAnotherImplementation(t *testing.T) {
	t.Parallel()
	for _, js := range []string{
		`null`, `true`, `false`, `0`, `127`, `128`, `-32`, `-33`, `-129`, `65535`, `65536`, `-2147483649`,
		`9223372036854775807`, `-9223372036854775808`, `18446744073709551615`, `1.5`, `-0.25`, `1e300`,
		`""`, `"é\u2028\"\\"`, `"` + strings.Repeat("x", 300) + `"`, `"` + strings.Repeat("y", 70000) + `"`,
		`[]`, `[1,[2,[3]]]`, `{}`, `{"a":1,"b":[true,null]}`, `{"$binary":"AQID"}`, `{"$binary":"AQID","x":1}`,
		`[` + strings.Repeat(`1,`, 20) + `1]`,
		// Each boundary between the short and long forms of a type.
		`"` + strings.Repeat("a", 31) + `"`, `"` + strings.Repeat("a", 32) + `"`,
		`"` + strings.Repeat("a", 255) + `"`, `"` + strings.Repeat("a", 256) + `"`, `"` + strings.Repeat("a", 65535) + `"`,
		`[` + strings.Repeat(`0,`, 14) + `0]`, `[` + strings.Repeat(`0,`, 15) + `0]`, `[` + strings.Repeat(`0,`, 65535) + `0]`,
		jsonObject(15), jsonObject(16), jsonObject(65536),
		`{"$binary":"` + base64.StdEncoding.EncodeToString(make([]byte, 256)) + `"}`,
		`{"$binary":"` + base64.StdEncoding.EncodeToString(make([]byte, 65536)) + `"}`,
		`-128`, `-32768`, `-32769`, `32767`, `2147483647`, `4294967295`,
	} {
		mp, err := appendJSONAsMsgpack(nil, json.RawMessage(js))
		if err != nil {
			t.Errorf("%.40s: %v", js, err)
			continue
		}
		var theirs any
		if err := msgpack.Unmarshal(mp, &theirs); err != nil {
			t.Errorf("%.40s: the other decoder refuses our bytes: %v", js, err)
			continue
		}
		var want any
		_ = json.Unmarshal([]byte(js), &want)
		if m, ok := want.(map[string]any); ok && len(m) == 1 && m[BinaryMarker] != nil {
			want, _ = base64.StdEncoding.DecodeString(m[BinaryMarker].(string)) // the marker is bin on the MessagePack side
		}
		if !sameNumberish(theirs, want) {
			t.Errorf("%.40s: decoded as %#v, want %#v", js, theirs, want)
		}
		// And back, with our reader.
		r := msgpackReader{b: mp}
		back, err := r.json()
		if err != nil || len(r.b) != 0 {
			t.Errorf("%.40s: back to JSON: %v", js, err)
			continue
		}
		var a, b any
		_ = json.Unmarshal(back, &a)
		_ = json.Unmarshal([]byte(js), &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%.40s: round trip gave %s", js, back)
		}
	}
	// Their encodings of Go values read as the JSON of those values.
	when := time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.UTC)
	for _, v := range []any{int8(-5), uint16(60000), int64(math.MinInt64), float32(0.5), map[string]any{"k": []any{"v", 2}}, []byte("bytes"), when} {
		mp, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		r := msgpackReader{b: mp}
		got, err := r.json()
		if err != nil {
			t.Errorf("%#v: %v", v, err)
			continue
		}
		var want []byte
		switch x := v.(type) {
		case []byte:
			want = []byte(`{"$binary":"Ynl0ZXM="}`)
		case time.Time:
			want = []byte(`"` + x.Format(time.RFC3339Nano) + `"`)
		default:
			want, _ = json.Marshal(v)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%#v: got %s, want %s", v, got, want)
		}
	}
}

// jsonObject is an object of n members.
func jsonObject(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	return b.String() + "}"
}

// sameNumberish compares decoded values with numbers compared by value.
func sameNumberish(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameNumberish(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !sameNumberish(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// TestBinaryRefusesBadInput: what cannot be a hub message is refused with
// the package's sentinels, and a length claim larger than the message
// allocates nothing. Not parallel: it measures allocated bytes.
func TestBinaryRefusesBadInput(t *testing.T) {
	frames := []struct {
		name  string
		frame string
		want  error
	}{
		{"cut length", "80", ErrIncomplete},
		{"cut message", "05 95 01", ErrIncomplete},
		{"zero length", "00", ErrMalformed},
		{"six byte length", "80 80 80 80 80 01", ErrMalformed},
		{"length beyond 2^31", "80 80 80 80 08", ErrMalformed},
	}
	for _, tt := range frames {
		err := SplitBinaryMessages(mustHex(t, tt.frame), func([]byte) error { return nil })
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	messages := []struct{ name, msg string }{
		{"not an array", "81 a1 61 01"},
		{"empty array", "90"},
		{"type not an int", "91 a1 31"},
		{"short invocation", "94 01 80 c0 a1 78"},
		{"target not a string", "95 01 80 c0 01 90"},
		{"empty target", "95 01 80 c0 a0 90"},
		{"arguments not an array", "95 01 80 c0 a1 78 01"},
		{"headers not strings", "95 01 81 a1 6b 01 c0 a1 78 90"},
		{"completion kind unknown", "95 03 80 a1 31 09 c0"},
		{"error completion without error", "94 03 80 a1 31 01"},
		{"bytes after the array", "91 06 c0"},
		{"claims 4 GB of string", "95 01 80 c0 db ff ff ff ff"},
		{"claims 4 G items", "95 01 80 c0 a1 78 dd ff ff ff ff"},
		{"map with int key", "95 01 80 c0 a1 78 91 81 01 02"},
		{"NaN argument", "95 01 80 c0 a1 78 91 cb 7f f8 00 00 00 00 00 01"},
		{"unknown ext", "95 01 80 c0 a1 78 91 d4 05 00"},
		{"invalid utf-8", "95 01 80 c0 a1 78 91 a1 ff"},
	}
	for _, tt := range messages {
		var before, after runtimeAllocs
		before.read()
		_, err := ParseBinaryMessage(mustHex(t, tt.msg))
		after.read()
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tt.name, err)
		}
		if after.bytes-before.bytes > 1<<20 {
			t.Errorf("%s: parsing allocated %d bytes", tt.name, after.bytes-before.bytes)
		}
	}
	deep := strings.Repeat("91 ", maxValueDepth+5) + "c0"
	if _, err := ParseBinaryMessage(mustHex(t, "95 01 80 c0 a1 78 91 "+deep)); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep nesting: %v, want ErrMalformed", err)
	}
	if _, err := AppendBinaryInvocation(nil, "", "x", json.RawMessage(`[1,`)); err == nil {
		t.Error("invalid JSON arguments encoded")
	}
}

// TestUnknownBinaryTypeSkipped: a type from a later protocol version is
// skipped, as in the JSON protocol.
func TestUnknownBinaryTypeSkipped(t *testing.T) {
	t.Parallel()
	m, err := ParseBinaryMessage(mustHex(t, "92 0c c0"))
	if err != nil || m.Type != 12 {
		t.Errorf("got %+v, %v; want type 12 and no error", m, err)
	}
}

// runtimeAllocs reads the bytes allocated so far.
type runtimeAllocs struct{ bytes uint64 }

func (a *runtimeAllocs) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	a.bytes = ms.TotalAlloc
}

// FuzzParseBinaryMessage: no input panics, errors wrap the sentinels, and a
// message that parses encodes again to one that parses the same.
func FuzzParseBinaryMessage(f *testing.F) {
	for _, s := range []string{
		"95 01 80 a1 30 a4 65 63 68 6f 91 c4 03 01 02 03",
		"95 01 80 c0 ab 74 72 69 67 67 65 72 50 75 73 68 90",
		"95 03 80 a1 30 03 c4 03 01 02 03", "94 03 80 a1 31 02", "95 03 80 a1 31 01 a3 62 61 64",
		"91 06", "92 07 c0", "93 07 a3 62 79 65 c3", "92 08 05", "92 09 cd 01 00",
		"94 02 80 a1 31 81 a1 61 92 01 c0", "93 05 80 a1 31", "96 04 80 a1 31 a1 78 90 91 a1 73",
	} {
		f.Add(mustHexF(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := ParseBinaryMessage(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		var frame []byte
		switch m.Type {
		case TypeInvocation:
			id := m.InvocationID
			if !m.HasInvocationID {
				id = ""
			}
			frame, err = AppendBinaryInvocation(nil, id, m.Target, m.Arguments)
		case TypeCompletion:
			frame, err = AppendBinaryCompletion(nil, m.InvocationID, m.Result, m.Error)
		case TypeStreamItem:
			frame, err = AppendBinaryStreamItem(nil, m.InvocationID, m.Item)
		default:
			return
		}
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", m, err)
		}
		if m.Type == TypeInvocation && m.HasInvocationID && m.InvocationID == "" {
			return // an empty id is written as no id
		}
		var again Message
		if err := SplitBinaryMessages(frame, func(b []byte) error { again, err = ParseBinaryMessage(b); return err }); err != nil {
			t.Fatalf("re-encoded %+v does not parse: %v", m, err)
		}
		if m.Type == TypeCompletion && m.Error != "" {
			m.Result = nil // an error completion carries no result
		}
		m.Headers, m.StreamIDs = nil, nil // not written by the server's encoders
		// Values compare as values (a float -0 becomes the integer 0).
		for _, pair := range [][2]*json.RawMessage{{&m.Arguments, &again.Arguments}, {&m.Result, &again.Result}, {&m.Item, &again.Item}} {
			var a, b any
			_ = json.Unmarshal(*pair[0], &a)
			_ = json.Unmarshal(*pair[1], &b)
			if (*pair[0] == nil) != (*pair[1] == nil) || !reflect.DeepEqual(a, b) {
				t.Fatalf("re-encoded %s parses as %s", *pair[0], *pair[1])
			}
			*pair[0], *pair[1] = nil, nil
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoded\n%+v\nparses as\n%+v", m, again)
		}
	})
}

// FuzzJSONAsMsgpack: any valid JSON crosses to MessagePack and back to the
// same value.
func FuzzJSONAsMsgpack(f *testing.F) {
	for _, s := range []string{`null`, `[1,"a",{"b":[true,1.5,-7]}]`, `{"$binary":"AQID"}`, `18446744073709551616`, `"\u00e9\ud83d\ude00"`,
		`[ {"$binary" : "AQID"} , {"k":{"$binary":"AA=="}} ]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		if !json.Valid(js) {
			if _, err := appendJSONAsMsgpack(nil, js); err == nil {
				t.Fatal("invalid JSON converted")
			}
			return
		}
		if out, err := withoutBinaryMarkers(js); err == nil && !json.Valid(out) {
			t.Fatalf("%s without markers is not JSON: %s", js, out)
		}
		mp, err := appendJSONAsMsgpack(nil, js)
		if err != nil {
			return // nested too deep, or a number beyond float64
		}
		r := msgpackReader{b: mp}
		back, err := r.json()
		if err != nil || len(r.b) != 0 {
			t.Fatalf("%s: back: %v", js, err)
		}
		var a, b any
		if err := json.Unmarshal(back, &a); err != nil {
			t.Fatalf("%s became invalid JSON %s", js, back)
		}
		_ = json.Unmarshal(js, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s came back as %s", js, back)
		}
	})
}

func mustHexF(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestBinaryMarkerForJSONClients: a binary marker reaches a JSON client as
// the base64 string ASP.NET Core's JSON protocol writes for a byte[], a
// MessagePack client as bin; arguments without one are not copied.
func TestBinaryMarkerForJSONClients(t *testing.T) {
	t.Parallel()
	args := json.RawMessage(`[ {"$binary":"AQID"}, {"a": {"$binary" : "AAA="}, "b":[1,{"$binary":"AQID","x":1}]}, "{\"$binary\":1}" ]`)
	frame, err := JSON.AppendInvocation(nil, "", "t", args)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMessage(bytes.TrimSuffix(frame, []byte{RecordSeparator}))
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	_ = json.Unmarshal(m.Arguments, &got)
	_ = json.Unmarshal([]byte(`["AQID",{"a":"AAA=","b":[1,{"$binary":"AQID","x":1}]},"{\"$binary\":1}"]`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON client gets %s", m.Arguments)
	}
	frame, err = MessagePack.AppendInvocation(nil, "", "t", json.RawMessage(`[{"$binary":"AQID"}]`))
	if err != nil || !bytes.Contains(frame, []byte{0xc4, 0x03, 0x01, 0x02, 0x03}) {
		t.Errorf("MessagePack client gets % x, %v; want bin 010203", frame, err)
	}
	plain := json.RawMessage(`["no marker here"]`)
	if out, _ := withoutBinaryMarkers(plain); &out[0] != &plain[0] {
		t.Error("arguments without a marker were copied")
	}
	for _, c := range []Codec{JSON, MessagePack} {
		if got, ok := CodecFor(c.Name()); !ok || got != c {
			t.Errorf("CodecFor(%q) = %v, %v", c.Name(), got, ok)
		}
	}
}
