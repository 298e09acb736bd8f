package delivery

import (
	"bytes"
	"encoding/json"

	"github.com/switchboard-gw/switchboard/upstream"
)

// appendEvent appends ev as json.Marshal encodes it, for the events the
// gateway sends most (messages and disconnects: no claims, query, headers
// or subprotocols) and values that need no escaping, and reports false,
// having appended nothing, for any other. encoding/json's reflection was
// about 3% of the gateway's CPU per invocation. FuzzAppendEvent holds the
// two encodings to the same bytes.
func appendEvent(dst []byte, ev *upstream.Event) ([]byte, bool) {
	if len(ev.Claims) > 0 || len(ev.Query) > 0 || len(ev.Headers) > 0 || len(ev.Subprotocols) > 0 {
		return dst, false
	}
	start := len(dst)
	ok := true
	str := func(prefix, s string) {
		if !plainString(s) {
			ok = false
			return
		}
		dst = append(dst, prefix...)
		dst = append(dst, '"')
		dst = append(dst, s...)
		dst = append(dst, '"')
	}
	str(`{"hub":`, ev.Hub)
	str(`,"connectionId":`, ev.ConnectionID)
	if ev.UserID != nil {
		str(`,"userId":`, *ev.UserID)
	} else {
		dst = append(dst, `,"userId":null`...)
	}
	str(`,"event":`, ev.Event)
	if ev.InvocationID != nil {
		str(`,"invocationId":`, *ev.InvocationID)
	}
	if ev.Target != "" {
		str(`,"target":`, ev.Target)
	}
	if len(ev.Arguments) > 0 && ok {
		// json.Marshal compacts a RawMessage and escapes <, > and & and
		// U+2028/2029 (0xE2 0x80 0xA8/A9) in it; json.Compact does the
		// first alone, so arguments holding any of them take the general
		// path. An invalid one fails Compact, and Marshal says why.
		if bytes.ContainsAny(ev.Arguments, "<>&\xe2") {
			ok = false
		} else {
			dst = append(dst, `,"arguments":`...)
			buf := bytes.NewBuffer(dst)
			if json.Compact(buf, ev.Arguments) != nil {
				ok = false
			}
			dst = buf.Bytes()
		}
	}
	if ev.Reason != "" {
		str(`,"reason":`, ev.Reason)
	}
	if !ok {
		return dst[:start], false
	}
	return append(dst, '}'), true
}

// eventSize is room for appendEvent's encoding of ev: its values and the
// names and quotes of every field.
func eventSize(ev *upstream.Event) int {
	n := 128 + len(ev.Hub) + len(ev.ConnectionID) + len(ev.Event) + len(ev.Target) + len(ev.Arguments) + len(ev.Reason)
	if ev.UserID != nil {
		n += len(*ev.UserID)
	}
	if ev.InvocationID != nil {
		n += len(*ev.InvocationID)
	}
	return n
}

// plainString reports whether encoding/json writes s as is between quotes:
// printable ASCII without '"', '\\' and the HTML characters it escapes.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
