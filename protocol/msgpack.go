package protocol

import (
	"encoding/json"
	"fmt"
)

// The MessagePack hub protocol: every message is a MessagePack array, framed
// by its length as a VarInt (7 bits a byte, least significant group first,
// the high bit set on every byte but the last, at most 5 bytes), several
// messages to a frame. The arrays, by type:
//
//	1 Invocation        [1, headers, invocationId|nil, target, arguments(, streamIds)]
//	2 StreamItem        [2, headers, invocationId, item]
//	3 Completion        [3, headers, invocationId, 1, error] | [3, headers, invocationId, 2] | [3, headers, invocationId, 3, result]
//	4 StreamInvocation  [4, headers, invocationId, target, arguments(, streamIds)]
//	5 CancelInvocation  [5, headers, invocationId]
//	6 Ping              [6]
//	7 Close             [7, error|nil(, allowReconnect)]
//	8 Ack               [8, sequenceId]
//	9 Sequence          [9, sequenceId]
//
// Arguments, results and items are converted to and from JSON as
// msgpack_value.go describes, so the rest of the gateway sees one form.

// maxVarintBytes is the longest length prefix: 5 bytes hold 2^35-1, and the
// protocol allows lengths up to 2^31-1.
const maxVarintBytes = 5

// completion kinds of the MessagePack Completion.
const (
	completionError  = 1
	completionVoid   = 2
	completionResult = 3
)

// SplitBinaryMessages calls fn with each length-prefixed message in frame
// (without its prefix), in order, and stops at the first error fn returns,
// returning it unchanged. The whole frame is checked first, so a bad frame
// has no effect: a frame that ends inside a length or a message gives
// ErrIncomplete, a length prefix longer than 5 bytes, beyond 2^31-1 or of
// zero ErrMalformed. An empty frame holds no message.
func SplitBinaryMessages(frame []byte, fn func(msg []byte) error) error {
	for rest := frame; len(rest) > 0; {
		n, size, err := readVarint(rest)
		if err != nil {
			return err
		}
		if uint64(len(rest)-size) < n {
			return ErrIncomplete
		}
		rest = rest[size+int(n):]
	}
	for len(frame) > 0 {
		n, size, _ := readVarint(frame)
		if err := fn(frame[size : size+int(n)]); err != nil {
			return err
		}
		frame = frame[size+int(n):]
	}
	return nil
}

// readVarint reads a message length prefix.
func readVarint(b []byte) (n uint64, size int, err error) {
	for i := 0; i < len(b); i++ {
		if i == maxVarintBytes {
			return 0, 0, fmt.Errorf("%w: message length prefix longer than %d bytes", ErrMalformed, maxVarintBytes)
		}
		n |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			switch {
			case n == 0:
				return 0, 0, fmt.Errorf("%w: empty message", ErrMalformed)
			case n > 1<<31-1:
				return 0, 0, fmt.Errorf("%w: message length %d is beyond 2^31-1", ErrMalformed, n)
			}
			return n, i + 1, nil
		}
	}
	return 0, 0, ErrIncomplete
}

// appendFramed appends body with its length prefix.
func appendFramed(dst, body []byte) []byte {
	n := uint64(len(body))
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	dst = append(dst, byte(n))
	return append(dst, body...)
}

// ParseBinaryMessage decodes and validates one MessagePack hub message
// (without its length prefix). Arguments, results and items come out as
// JSON. Messages of unknown types decode to a Message with only Type set and
// a nil error, as with ParseMessage.
func ParseBinaryMessage(msg []byte) (Message, error) {
	var m Message
	r := msgpackReader{b: msg}
	n, err := r.arrayLen()
	if err != nil {
		return m, fmt.Errorf("%w: a MessagePack hub message is an array", ErrMalformed)
	}
	if n == 0 {
		return m, fmt.Errorf("%w: empty message array", ErrMalformed)
	}
	t, err := r.int()
	if err != nil {
		return m, fmt.Errorf("%w: the message type must be an integer", ErrMalformed)
	}
	if t < TypeInvocation || t > TypeSequence {
		return Message{Type: int(t)}, nil
	}
	m.Type = int(t)
	if err := m.decodeBinary(&r, n); err != nil {
		return Message{Type: m.Type}, fmt.Errorf("%w: %s: %s", ErrMalformed, typeNames[t], err)
	}
	if len(r.b) > 0 {
		return Message{Type: m.Type}, fmt.Errorf("%w: %s: bytes after the message array", ErrMalformed, typeNames[t])
	}
	return m, nil
}

// minItems is the shortest array of each type, its type included.
var minItems = [...]int{
	TypeInvocation:       5,
	TypeStreamItem:       4,
	TypeCompletion:       4,
	TypeStreamInvocation: 5,
	TypeCancelInvocation: 3,
	TypePing:             1,
	TypeClose:            2,
	TypeAck:              2,
	TypeSequence:         2,
}

// decodeBinary reads the items after the type; n counts them all.
func (m *Message) decodeBinary(r *msgpackReader, n int) error {
	if n < minItems[m.Type] {
		return fieldError(fmt.Sprintf("%d items, want at least %d", n, minItems[m.Type]))
	}
	read := 1 // the type
	var err error
	switch m.Type {
	case TypeInvocation, TypeStreamInvocation, TypeStreamItem, TypeCompletion, TypeCancelInvocation:
		if m.Headers, err = r.stringMap(); err != nil {
			return fieldError("headers must be a map of strings")
		}
		id, present, err := r.nilOrString()
		if err != nil {
			return fieldError("invocationId must be a string")
		}
		m.InvocationID, m.HasInvocationID = id, present
		if !present && m.Type != TypeInvocation {
			return fieldError("invocationId is required")
		}
		read += 2
	}
	switch m.Type {
	case TypeInvocation, TypeStreamInvocation:
		if m.Target, err = r.str(); err != nil || m.Target == "" {
			return fieldError("target must be a non-empty string")
		}
		if r.peekKind() != kindArray {
			return fieldError("arguments must be an array")
		}
		if m.Arguments, err = r.json(); err != nil {
			return fieldError("arguments: " + err.Error())
		}
		read += 2
		if n > read {
			if m.StreamIDs, err = stringArray(r); err != nil {
				return fieldError("streamIds must be an array of strings")
			}
			read++
		}
	case TypeStreamItem:
		if m.Item, err = r.json(); err != nil {
			return fieldError("item: " + err.Error())
		}
		read++
	case TypeCompletion:
		kind, err := r.int()
		if err != nil {
			return fieldError("the result kind must be an integer")
		}
		read++
		switch kind {
		case completionError:
			if n < 5 {
				return fieldError("an error completion needs the error")
			}
			if m.Error, err = r.str(); err != nil {
				return fieldError("error must be a string")
			}
			read++
		case completionVoid:
		case completionResult:
			if n < 5 {
				return fieldError("a result completion needs the result")
			}
			if m.Result, err = r.json(); err != nil {
				return fieldError("result: " + err.Error())
			}
			read++
		default:
			return fieldError(fmt.Sprintf("unknown result kind %d", kind))
		}
	case TypeClose:
		if m.Error, _, err = r.nilOrString(); err != nil {
			return fieldError("error must be a string or nil")
		}
		read++
		if n > read {
			if m.AllowReconnect, err = r.bool(); err != nil {
				return fieldError("allowReconnect must be a boolean")
			}
			read++
		}
	case TypeAck, TypeSequence:
		if m.SequenceID, err = r.int(); err != nil {
			return fieldError("sequenceId must be an integer")
		}
		read++
	}
	for ; read < n; read++ { // items a later protocol version may add
		if err := r.skip(); err != nil {
			return fieldError("trailing item: " + err.Error())
		}
	}
	return nil
}

func stringArray(r *msgpackReader) ([]string, error) {
	if r.peekKind() == kindNil {
		r.b = r.b[1:]
		return nil, nil
	}
	n, err := r.arrayLen()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	for range n {
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// The encoders below append one framed MessagePack message to dst. Values
// given as JSON (arguments, results, items) are converted; a value that is
// not valid JSON or has no MessagePack form is an error, and dst is then
// returned unchanged.

// AppendBinaryInvocation appends an Invocation; an empty invocationID writes
// nil (a send that expects no Completion), nil args an empty array.
func AppendBinaryInvocation(dst []byte, invocationID, target string, args json.RawMessage) ([]byte, error) {
	return appendBinaryCall(dst, TypeInvocation, invocationID, target, args)
}

// AppendBinaryStreamInvocation appends a StreamInvocation (client side).
func AppendBinaryStreamInvocation(dst []byte, invocationID, target string, args json.RawMessage) ([]byte, error) {
	return appendBinaryCall(dst, TypeStreamInvocation, invocationID, target, args)
}

func appendBinaryCall(dst []byte, typ int, invocationID, target string, args json.RawMessage) ([]byte, error) {
	body := appendMsgpackArrayHeader(make([]byte, 0, 32+len(target)+len(args)), 5)
	body = appendMsgpackInt(body, int64(typ))
	body = appendMsgpackMapHeader(body, 0)
	if invocationID == "" && typ == TypeInvocation {
		body = appendMsgpackNil(body)
	} else {
		body = appendMsgpackString(body, invocationID)
	}
	body = appendMsgpackString(body, target)
	if args == nil {
		body = appendMsgpackArrayHeader(body, 0)
	} else {
		var err error
		if body, err = appendJSONAsMsgpack(body, args); err != nil {
			return dst, fmt.Errorf("protocol: arguments: %w", err)
		}
	}
	return appendFramed(dst, body), nil
}

// AppendBinaryCompletion appends a Completion: an error when errMsg is not
// empty, else a result, or void when result is nil.
func AppendBinaryCompletion(dst []byte, invocationID string, result json.RawMessage, errMsg string) ([]byte, error) {
	body := make([]byte, 0, 32+len(result)+len(errMsg))
	switch {
	case errMsg != "":
		body = appendBinaryHead(body, 5, TypeCompletion, invocationID)
		body = appendMsgpackInt(body, completionError)
		body = appendMsgpackString(body, errMsg)
	case result == nil:
		body = appendBinaryHead(body, 4, TypeCompletion, invocationID)
		body = appendMsgpackInt(body, completionVoid)
	default:
		body = appendBinaryHead(body, 5, TypeCompletion, invocationID)
		body = appendMsgpackInt(body, completionResult)
		var err error
		if body, err = appendJSONAsMsgpack(body, result); err != nil {
			return dst, fmt.Errorf("protocol: result: %w", err)
		}
	}
	return appendFramed(dst, body), nil
}

// AppendBinaryStreamItem appends a StreamItem; a nil item writes nil.
func AppendBinaryStreamItem(dst []byte, invocationID string, item json.RawMessage) ([]byte, error) {
	body := appendBinaryHead(make([]byte, 0, 16+len(item)), 4, TypeStreamItem, invocationID)
	if item == nil {
		body = appendMsgpackNil(body)
	} else {
		var err error
		if body, err = appendJSONAsMsgpack(body, item); err != nil {
			return dst, fmt.Errorf("protocol: item: %w", err)
		}
	}
	return appendFramed(dst, body), nil
}

// AppendBinaryCancelInvocation appends a CancelInvocation.
func AppendBinaryCancelInvocation(dst []byte, invocationID string) []byte {
	return appendFramed(dst, appendBinaryHead(nil, 3, TypeCancelInvocation, invocationID))
}

// appendBinaryHead appends [type, {}, invocationId of an array of n items.
func appendBinaryHead(dst []byte, n, typ int, invocationID string) []byte {
	dst = appendMsgpackArrayHeader(dst, n)
	dst = appendMsgpackInt(dst, int64(typ))
	dst = appendMsgpackMapHeader(dst, 0)
	return appendMsgpackString(dst, invocationID)
}

// AppendBinaryPing appends a Ping: the bytes 02 91 06.
func AppendBinaryPing(dst []byte) []byte { return append(dst, 0x02, 0x91, TypePing) }

// AppendBinaryClose appends a Close: [7, error|nil, allowReconnect].
func AppendBinaryClose(dst []byte, errMsg string, allowReconnect bool) []byte {
	body := appendMsgpackArrayHeader(make([]byte, 0, 8+len(errMsg)), 3)
	body = appendMsgpackInt(body, TypeClose)
	if errMsg == "" {
		body = appendMsgpackNil(body)
	} else {
		body = appendMsgpackString(body, errMsg)
	}
	body = appendMsgpackBool(body, allowReconnect)
	return appendFramed(dst, body)
}

// AppendBinaryAck appends an Ack (stateful reconnect).
func AppendBinaryAck(dst []byte, sequenceID int64) []byte {
	return appendBinarySequenced(dst, TypeAck, sequenceID)
}

// AppendBinarySequence appends a Sequence (stateful reconnect).
func AppendBinarySequence(dst []byte, sequenceID int64) []byte {
	return appendBinarySequenced(dst, TypeSequence, sequenceID)
}

func appendBinarySequenced(dst []byte, typ int, sequenceID int64) []byte {
	body := appendMsgpackArrayHeader(make([]byte, 0, 11), 2)
	body = appendMsgpackInt(body, int64(typ))
	return appendFramed(dst, appendMsgpackInt(body, sequenceID))
}
