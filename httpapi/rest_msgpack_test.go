package httpapi

import (
	"bytes"
	"encoding/binary"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func pack(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMsgpackArgumentsAsJSON: each MessagePack type reaches JSON clients as
// the JSON value documented in rest_msgpack.go; what has no JSON form is
// refused, saying why.
func TestMsgpackArgumentsAsJSON(t *testing.T) {
	t.Parallel()
	deep := any([]any{})
	for range 200 {
		deep = []any{deep}
	}
	tests := []struct {
		name    string
		args    any
		want    string // JSON, or the error's text when wantErr
		wantErr bool
	}{
		{"scalars", []any{nil, true, false, -5, int64(math.MinInt64), uint64(math.MaxUint64)}, `[null,true,false,-5,-9223372036854775808,18446744073709551615]`, false},
		{"floats", []any{float32(0.1), 1.5, 1e300}, `[0.1,1.5,1e+300]`, false},
		{"strings", []any{"h\"i <b>", "é"}, `["h\"i <b>","é"]`, false},
		{"bin", []any{[]byte{1, 2, 3}}, `[{"$binary":"AQID"}]`, false},
		{"nested", []any{map[string]any{"a": []any{1, map[string]any{"b": nil}}}}, `[{"a":[1,{"b":null}]}]`, false},
		{"timestamp", []any{time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)}, `["2024-01-02T03:04:05.000000006Z"]`, false},
		{"empty", []any{}, `[]`, false},
		{"NaN", []any{math.NaN()}, "have no JSON form", true},
		{"infinity", []any{math.Inf(1)}, "have no JSON form", true},
		{"integer keys", []any{map[int]string{1: "x"}}, "map keys must be strings", true},
		{"too deep", deep, "nested deeper than", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target, args, err := decodeMsgpackMessage(pack(t, map[string]any{"target": "msg", "arguments": tt.args}))
			switch {
			case tt.wantErr && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %s, %v; want an error saying %q", args, err, tt.want)
			case !tt.wantErr && err != nil:
				t.Fatalf("error %v, want %s", err, tt.want)
			case !tt.wantErr && (target != "msg" || string(args) != tt.want):
				t.Fatalf("got %q %s, want msg %s", target, args, tt.want)
			}
		})
	}

	// An extension other than the timestamp has no JSON form.
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	_ = enc.EncodeMapLen(2)
	_ = enc.EncodeString("target")
	_ = enc.EncodeString("msg")
	_ = enc.EncodeString("arguments")
	_ = enc.EncodeArrayLen(1)
	_ = enc.EncodeExtHeader(5, 1)
	buf.WriteByte(0)
	if _, _, err := decodeMsgpackMessage(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "extension type 5") {
		t.Errorf("extension 5: %v, want it refused", err)
	}
}

// sdkBinaryPayload builds an application/octet-stream body the way Azure's
// Management SDK does (BinaryPayloadMessageContent): a map from protocol
// name to the message serialized in that protocol, each written as bin.
func sdkBinaryPayload(t *testing.T, entries map[string][]byte, order ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	if err := enc.EncodeMapLen(len(order)); err != nil {
		t.Fatal(err)
	}
	for _, name := range order {
		if err := enc.EncodeString(name); err != nil {
			t.Fatal(err)
		}
		if err := enc.EncodeBytes(entries[name]); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// packedInvocation is a MessagePack hub protocol Invocation with its varint
// length prefix, as the SDK's MessagePackHubProtocol writes it.
func packedInvocation(t *testing.T, target string, args []any) []byte {
	t.Helper()
	msg := pack(t, []any{1, map[string]string{}, nil, target, args, []string{}})
	return append(binary.AppendUvarint(nil, uint64(len(msg))), msg...)
}

func TestBinaryPayload(t *testing.T) {
	t.Parallel()
	jsonMsg := []byte(`{"type":1,"target":"fromJSON","arguments":["j",1]}` + "\x1e")
	packed := packedInvocation(t, "fromPack", []any{"p", []byte{255}})
	tests := []struct {
		name       string
		body       []byte
		wantTarget string
		wantArgs   string
		wantErr    string
	}{
		{"both: json used as sent", sdkBinaryPayload(t, map[string][]byte{"json": jsonMsg, "messagepack": packed}, "json", "messagepack"), "fromJSON", `["j",1]`, ""},
		{"messagepack only", sdkBinaryPayload(t, map[string][]byte{"messagepack": packed}, "messagepack"), "fromPack", `["p",{"$binary":"/w=="}]`, ""},
		{"unknown protocol only", sdkBinaryPayload(t, map[string][]byte{"xml": []byte("<x/>")}, "xml"), "", "", `no "json" or "messagepack" entry (the map has "xml")`},
		{"json without separator", sdkBinaryPayload(t, map[string][]byte{"json": jsonMsg[:len(jsonMsg)-1]}, "json"), "", "", "incomplete"},
		{"json two messages", sdkBinaryPayload(t, map[string][]byte{"json": append(append([]byte{}, jsonMsg...), jsonMsg...)}, "json"), "", "", "2 messages"},
		{"json completion", sdkBinaryPayload(t, map[string][]byte{"json": []byte(`{"type":3,"invocationId":"1"}` + "\x1e")}, "json"), "", "", "want an invocation"},
		{"messagepack length wrong", sdkBinaryPayload(t, map[string][]byte{"messagepack": append(packed, 0)}, "messagepack"), "", "", "empty message"},
		{"not a map", pack(t, []any{"json"}), "", "", "must be a map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target, args, err := decodeBinaryPayload(tt.body)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q %s, %v; want an error saying %q", target, args, err, tt.wantErr)
				}
				return
			}
			if err != nil || target != tt.wantTarget || string(args) != tt.wantArgs {
				t.Fatalf("got %q %s, %v; want %q %s", target, args, err, tt.wantTarget, tt.wantArgs)
			}
		})
	}
}

// TestMsgpackLengthsChecked: a header claiming more bytes than the body
// holds is refused without allocating what it claims.
func TestMsgpackLengthsChecked(t *testing.T) {
	body := []byte{0x81, 0xa4, 'j', 's', 'o', 'n', 0xc6, 0xff, 0xff, 0xff, 0xf0} // bin32 of ~4 GB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := decodeBinaryPayload(body)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("a bin longer than the body: %v, want it refused", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("refusing it allocated %d bytes", grew)
	}
}
