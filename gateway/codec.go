package gateway

import (
	"encoding/json"
	"sync/atomic"

	"github.com/switchboard-gw/switchboard/protocol"
)

// A connection speaks the hub protocol its handshake chose (Conn.codec).
// What goes to many connections is encoded once per protocol in use: each
// hub counts its connections per codec, a fan-out encodes for the codecs
// with a connection before it walks the members, and every member of a
// codec is given the same bytes.

// codecs are the hub protocols, in the order of their indexes.
var codecs = [...]protocol.Codec{protocol.JSON, protocol.MessagePack}

// codecIndex is c's index in codecs.
func codecIndex(c protocol.Codec) int {
	if c == protocol.MessagePack {
		return 1
	}
	return 0
}

// pingFrames are the Ping of each codec.
var pingFrames = [len(codecs)][]byte{protocol.JSON.AppendPing(nil), protocol.MessagePack.AppendPing(nil)}

// codecCounts counts a hub's connections per codec.
type codecCounts [len(codecs)]atomic.Int64

// frameSet is one message encoded for each codec in use: a server
// invocation or a Close. A codec whose connections arrived after the set
// was made is encoded on first use. It is a value, made and used on one
// goroutine's stack, so a fan-out allocates only the encodings.
type frameSet struct {
	close          bool // a Close message; else an invocation
	target         string
	args           json.RawMessage
	reason         string
	allowReconnect bool

	frames [len(codecs)][]byte
	tried  [len(codecs)]bool
}

// prepare encodes for every codec counts says is in use.
func (f *frameSet) prepare(counts *codecCounts) {
	for i := range codecs {
		if counts[i].Load() > 0 {
			f.get(codecs[i])
		}
	}
}

// get returns the frame for codec, nil when the message has no form in it
// (a value MessagePack cannot carry): its connections then miss it.
func (f *frameSet) get(codec protocol.Codec) []byte {
	i := codecIndex(codec)
	if !f.tried[i] {
		f.tried[i] = true
		if f.close {
			f.frames[i] = codec.AppendClose(nil, f.reason, f.allowReconnect)
		} else {
			f.frames[i], _ = codec.AppendInvocation(nil, "", f.target, f.args)
		}
	}
	return f.frames[i]
}

// invocationFrames encodes a server invocation for every codec in use.
func invocationFrames(counts *codecCounts, target string, args json.RawMessage) frameSet {
	f := frameSet{target: target, args: args}
	f.prepare(counts)
	return f
}

// closeFrames encodes a Close message for every codec in use.
func closeFrames(counts *codecCounts, reason string, allowReconnect bool) frameSet {
	f := frameSet{close: true, reason: reason, allowReconnect: allowReconnect}
	f.prepare(counts)
	return f
}
