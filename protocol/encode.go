package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The encoders below append one framed message (JSON + RecordSeparator) to
// dst and return the extended slice. They write the JSON by hand so that
// encoding allocates nothing beyond growing dst: a broadcast is encoded once
// per protocol and the same bytes are queued to every recipient.
//
// Raw fields (arguments, result, item) are written as given; the caller
// guarantees they are valid JSON.

// AppendInvocation appends an Invocation. An empty invocationID writes no
// "invocationId" (a send that expects no Completion); nil args writes [].
func AppendInvocation(dst []byte, invocationID, target string, args json.RawMessage) []byte {
	dst = append(dst, `{"type":1`...)
	if invocationID != "" {
		dst = append(dst, `,"invocationId":`...)
		dst = appendJSONString(dst, invocationID)
	}
	dst = append(dst, `,"target":`...)
	dst = appendJSONString(dst, target)
	dst = append(dst, `,"arguments":`...)
	if args == nil {
		dst = append(dst, "[]"...)
	} else {
		dst = append(dst, args...)
	}
	return append(dst, '}', RecordSeparator)
}

// AppendCompletion appends a Completion. A non-empty errMsg writes "error"
// and ignores result; otherwise a nil result writes no "result" (a void
// completion, which also ends a stream).
func AppendCompletion(dst []byte, invocationID string, result json.RawMessage, errMsg string) []byte {
	dst = append(dst, `{"type":3,"invocationId":`...)
	dst = appendJSONString(dst, invocationID)
	switch {
	case errMsg != "":
		dst = append(dst, `,"error":`...)
		dst = appendJSONString(dst, errMsg)
	case result != nil:
		dst = append(dst, `,"result":`...)
		dst = append(dst, result...)
	}
	return append(dst, '}', RecordSeparator)
}

// AppendStreamItem appends a StreamItem; a nil item writes null.
func AppendStreamItem(dst []byte, invocationID string, item json.RawMessage) []byte {
	dst = append(dst, `{"type":2,"invocationId":`...)
	dst = appendJSONString(dst, invocationID)
	dst = append(dst, `,"item":`...)
	if item == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, item...)
	}
	return append(dst, '}', RecordSeparator)
}

// AppendCancelInvocation appends a CancelInvocation.
func AppendCancelInvocation(dst []byte, invocationID string) []byte {
	dst = append(dst, `{"type":5,"invocationId":`...)
	dst = appendJSONString(dst, invocationID)
	return append(dst, '}', RecordSeparator)
}

// AppendPing appends a Ping: {"type":6}.
func AppendPing(dst []byte) []byte {
	return append(dst, "{\"type\":6}\x1e"...)
}

// AppendClose appends a Close. A non-empty errMsg is the reason the client
// reports; allowReconnect tells a client with a retry policy to reconnect.
func AppendClose(dst []byte, errMsg string, allowReconnect bool) []byte {
	dst = append(dst, `{"type":7`...)
	if errMsg != "" {
		dst = append(dst, `,"error":`...)
		dst = appendJSONString(dst, errMsg)
	}
	if allowReconnect {
		dst = append(dst, `,"allowReconnect":true`...)
	}
	return append(dst, '}', RecordSeparator)
}

// AppendAck appends an Ack (stateful reconnect).
func AppendAck(dst []byte, sequenceID int64) []byte {
	dst = append(dst, `{"type":8,"sequenceId":`...)
	dst = strconv.AppendInt(dst, sequenceID, 10)
	return append(dst, '}', RecordSeparator)
}

// AppendSequence appends a Sequence (stateful reconnect).
func AppendSequence(dst []byte, sequenceID int64) []byte {
	dst = append(dst, `{"type":9,"sequenceId":`...)
	dst = strconv.AppendInt(dst, sequenceID, 10)
	return append(dst, '}', RecordSeparator)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. It escapes what JSON requires
// (", \ and control characters) plus U+2028 and U+2029, which JavaScript
// before ES2019 does not allow raw in string literals; invalid UTF-8 becomes
// U+FFFD, as with encoding/json. Unlike encoding/json it leaves <, > and &
// alone: hub messages are never embedded in HTML.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, needing no escape
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
