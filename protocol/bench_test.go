package protocol

import (
	"encoding/json"
	"testing"
)

func BenchmarkAppendInvocation(b *testing.B) {
	args := json.RawMessage(`["alice","hello everyone, this is a chat message of ordinary length"]`)
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendInvocation(dst[:0], "", "newMessage", args)
	}
	b.SetBytes(int64(len(dst)))
}

func BenchmarkParseMessage(b *testing.B) {
	msg := []byte(`{"target":"sendMessage","arguments":["alice","hello everyone, this is a chat message of ordinary length"],"invocationId":"17","type":1}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := ParseMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}
