package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/switchboard-gw/switchboard/protocol"
)

// Send bodies in MessagePack. Azure's 2022-06-01 REST API declares three
// content types for every send operation; besides JSON:
//
//   - application/x-msgpack: the message of the JSON body as a MessagePack
//     map, {"target": str, "arguments": array}. Keys match whatever their
//     case, as JSON's do (Azure's Management SDK writes "Target" and
//     "Arguments"); other keys are skipped.
//   - application/octet-stream: what Azure's Management SDK sends once an
//     app configured its hub protocols (its BinaryPayloadMessageContent): a
//     MessagePack map from hub protocol name to the invocation already
//     serialized in that protocol, as bin: "json" maps to a JSON hub
//     protocol Invocation ending with its 0x1E separator, "messagepack" to a
//     MessagePack hub protocol Invocation with its varint length prefix.
//     Switchboard's clients speak JSON, so a "json" entry is used as sent;
//     without one, the "messagepack" entry is decoded. Entries for other
//     protocols are skipped.
//
// Arguments reach JSON clients as JSON: nil is null; booleans, integers and
// floats are numbers (NaN and the infinities have no JSON form and are
// refused); str is a string; bin is a base64 string, as .NET writes a
// byte[] in JSON; arrays are arrays; maps with string keys are objects; the
// timestamp extension is an RFC 3339 string in UTC. Other extensions and
// maps with other keys have no JSON form and are refused.

const (
	mimeMsgpack = "application/x-msgpack"
	mimeBinary  = "application/octet-stream"
)

// maxMsgpackDepth bounds the nesting of arrays and maps in a MessagePack
// body, so a small body cannot drive deep recursion.
const maxMsgpackDepth = 128

// msgpackTimestamp is the extension type of the MessagePack timestamp.
const msgpackTimestamp = -1

// decodeMsgpackMessage reads an application/x-msgpack send body.
func decodeMsgpackMessage(body []byte) (target string, args json.RawMessage, err error) {
	r := bytes.NewReader(body)
	d := msgpack.NewDecoder(r)
	n, err := mapLen(d, "the body")
	if err != nil {
		return "", nil, err
	}
	hasTarget := false
	for range n {
		key, err := mapKey(d, r)
		if err != nil {
			return "", nil, err
		}
		switch strings.ToLower(key) {
		case "target":
			if target, err = stringValue(d, r, `"target"`); err != nil {
				return "", nil, err
			}
			hasTarget = true
		case "arguments":
			if args, err = argumentsValue(d, r); err != nil {
				return "", nil, err
			}
		default:
			if err := skipMsgpack(d, r, 1); err != nil {
				return "", nil, fmt.Errorf("key %q: %w", key, err)
			}
		}
	}
	if r.Len() > 0 {
		return "", nil, fmt.Errorf("%d bytes follow the map", r.Len())
	}
	if !hasTarget {
		return "", nil, errors.New(`"target" is missing`)
	}
	return target, args, nil
}

// decodeBinaryPayload reads an application/octet-stream send body.
func decodeBinaryPayload(body []byte) (target string, args json.RawMessage, err error) {
	r := bytes.NewReader(body)
	d := msgpack.NewDecoder(r)
	n, err := mapLen(d, "the body")
	if err != nil {
		return "", nil, err
	}
	var jsonMsg, packMsg []byte
	var names []string
	for range n {
		name, err := mapKey(d, r)
		if err != nil {
			return "", nil, err
		}
		names = append(names, strconv.Quote(name))
		c, err := d.PeekCode()
		if err != nil {
			return "", nil, fmt.Errorf("protocol %q: %w", name, err)
		}
		if !msgpcode.IsBin(c) && !msgpcode.IsString(c) {
			return "", nil, fmt.Errorf("protocol %q: the serialized message must be bin, not %s", name, msgpackKind(c))
		}
		msg, err := readRaw(d, r)
		if err != nil {
			return "", nil, fmt.Errorf("protocol %q: %w", name, err)
		}
		switch strings.ToLower(name) {
		case "json":
			jsonMsg = msg
		case "messagepack":
			packMsg = msg
		}
	}
	if r.Len() > 0 {
		return "", nil, fmt.Errorf("%d bytes follow the map", r.Len())
	}
	switch {
	case jsonMsg != nil:
		target, args, err = jsonInvocation(jsonMsg)
		if err != nil {
			return "", nil, fmt.Errorf(`protocol "json": %w`, err)
		}
	case packMsg != nil:
		target, args, err = msgpackInvocation(packMsg)
		if err != nil {
			return "", nil, fmt.Errorf(`protocol "messagepack": %w`, err)
		}
	default:
		return "", nil, fmt.Errorf(`no "json" or "messagepack" entry (the map has %s)`, orNothing(names))
	}
	return target, args, nil
}

func orNothing(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// jsonInvocation reads one JSON hub protocol Invocation with its separator.
func jsonInvocation(frame []byte) (string, json.RawMessage, error) {
	var msgs [][]byte
	if err := protocol.SplitMessages(frame, func(m []byte) error {
		msgs = append(msgs, m)
		return nil
	}); err != nil {
		return "", nil, err
	}
	if len(msgs) != 1 {
		return "", nil, fmt.Errorf("%d messages, want one invocation", len(msgs))
	}
	m, err := protocol.ParseMessage(msgs[0])
	if err != nil {
		return "", nil, err
	}
	if m.Type != protocol.TypeInvocation {
		return "", nil, fmt.Errorf("message type %d, want an invocation (1)", m.Type)
	}
	if len(m.StreamIDs) > 0 {
		return "", nil, errors.New("an invocation with streamIds cannot be sent by REST")
	}
	return m.Target, m.Arguments, nil
}

// msgpackInvocation reads one MessagePack hub protocol Invocation, [1,
// headers, invocationId, target, arguments, streamIds?], with its varint
// length prefix.
func msgpackInvocation(frame []byte) (string, json.RawMessage, error) {
	size, n := binary.Uvarint(frame)
	if n <= 0 || n > 5 {
		return "", nil, errors.New("the message does not start with a valid varint length")
	}
	if size != uint64(len(frame)-n) {
		return "", nil, fmt.Errorf("the length prefix says %d bytes, %d follow; want exactly one message", size, len(frame)-n)
	}
	r := bytes.NewReader(frame[n:])
	d := msgpack.NewDecoder(r)
	c, err := d.PeekCode()
	if err != nil {
		return "", nil, err
	}
	if !isArray(c) {
		return "", nil, fmt.Errorf("the message must be an array, not %s", msgpackKind(c))
	}
	fields, err := d.DecodeArrayLen()
	if err != nil {
		return "", nil, err
	}
	if fields < 5 {
		return "", nil, fmt.Errorf("an invocation has at least 5 fields, this message %d", fields)
	}
	if c, err := d.PeekCode(); err != nil || !msgpcode.IsFixedNum(c) {
		return "", nil, errors.New("the message type must be a small integer")
	}
	typ, err := d.DecodeInt64()
	if err != nil {
		return "", nil, err
	}
	if typ != protocol.TypeInvocation {
		return "", nil, fmt.Errorf("message type %d, want an invocation (1)", typ)
	}
	if err := skipMsgpack(d, r, 1); err != nil { // headers
		return "", nil, fmt.Errorf("headers: %w", err)
	}
	if err := skipMsgpack(d, r, 1); err != nil { // invocation id: a REST send expects no result
		return "", nil, fmt.Errorf("invocation id: %w", err)
	}
	target, err := stringValue(d, r, "the target")
	if err != nil {
		return "", nil, err
	}
	args, err := argumentsValue(d, r)
	if err != nil {
		return "", nil, err
	}
	if args == nil {
		return "", nil, errors.New("the arguments must be an array, not nil")
	}
	if fields > 5 {
		c, err := d.PeekCode()
		if err != nil {
			return "", nil, err
		}
		if c != msgpcode.Nil && c != msgpcode.FixedArrayLow {
			return "", nil, errors.New("an invocation with streamIds cannot be sent by REST")
		}
		for range fields - 5 {
			if err := skipMsgpack(d, r, 1); err != nil {
				return "", nil, err
			}
		}
	}
	if r.Len() > 0 {
		return "", nil, fmt.Errorf("%d bytes follow the invocation", r.Len())
	}
	return target, args, nil
}

func isArray(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

func isMap(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

// msgpackKind names the type a MessagePack type byte starts, for errors.
func msgpackKind(c byte) string {
	switch {
	case c == msgpcode.Nil:
		return "nil"
	case c == msgpcode.True || c == msgpcode.False:
		return "a boolean"
	case msgpcode.IsFixedNum(c), c >= msgpcode.Uint8 && c <= msgpcode.Int64:
		return "an integer"
	case c == msgpcode.Float || c == msgpcode.Double:
		return "a float"
	case msgpcode.IsString(c):
		return "a str"
	case msgpcode.IsBin(c):
		return "a bin"
	case isArray(c):
		return "an array"
	case isMap(c):
		return "a map"
	case msgpcode.IsExt(c):
		return "an extension"
	}
	return fmt.Sprintf("the unused type byte 0x%02x", c)
}

func mapLen(d *msgpack.Decoder, what string) (int, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, fmt.Errorf("%s is empty or cut short: %w", what, err)
	}
	if !isMap(c) {
		return 0, fmt.Errorf("%s must be a map, not %s", what, msgpackKind(c))
	}
	return d.DecodeMapLen()
}

func mapKey(d *msgpack.Decoder, r *bytes.Reader) (string, error) {
	c, err := d.PeekCode()
	if err != nil {
		return "", err
	}
	if !msgpcode.IsString(c) {
		return "", fmt.Errorf("map keys must be str, not %s", msgpackKind(c))
	}
	b, err := readRaw(d, r)
	return string(b), err
}

func stringValue(d *msgpack.Decoder, r *bytes.Reader, what string) (string, error) {
	c, err := d.PeekCode()
	if err != nil {
		return "", err
	}
	if !msgpcode.IsString(c) {
		return "", fmt.Errorf("%s must be a str, not %s", what, msgpackKind(c))
	}
	b, err := readRaw(d, r)
	return string(b), err
}

// readRaw reads the bytes of the next str or bin. The library's
// DecodeBytes allocates whatever length the header claims; this checks it
// against what is left of the body (r) first.
func readRaw(d *msgpack.Decoder, r *bytes.Reader) ([]byte, error) {
	n, err := d.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > r.Len() {
		return nil, fmt.Errorf("a str or bin of %d bytes; %d are left", n, r.Len())
	}
	b := make([]byte, n)
	return b, d.ReadFull(b)
}

// argumentsValue reads the arguments, an array (nil: none), as JSON.
func argumentsValue(d *msgpack.Decoder, r *bytes.Reader) (json.RawMessage, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case c == msgpcode.Nil:
		return nil, d.Skip()
	case !isArray(c):
		return nil, fmt.Errorf(`"arguments" must be an array, not %s`, msgpackKind(c))
	}
	out, err := appendMsgpackJSON(nil, d, r, 0)
	if err != nil {
		return nil, fmt.Errorf(`"arguments": %w`, err)
	}
	return out, nil
}

// appendMsgpackJSON appends the next MessagePack value as JSON.
func appendMsgpackJSON(b []byte, d *msgpack.Decoder, r *bytes.Reader, depth int) ([]byte, error) {
	if depth > maxMsgpackDepth {
		return nil, fmt.Errorf("arrays and maps nest more than %d deep", maxMsgpackDepth)
	}
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case c == msgpcode.Nil:
		return append(b, "null"...), d.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		v, err := d.DecodeBool()
		return strconv.AppendBool(b, v), err
	case c >= msgpcode.Uint8 && c <= msgpcode.Uint64:
		v, err := d.DecodeUint64()
		return strconv.AppendUint(b, v, 10), err
	case msgpcode.IsFixedNum(c), c >= msgpcode.Int8 && c <= msgpcode.Int64:
		v, err := d.DecodeInt64()
		return strconv.AppendInt(b, v, 10), err
	case c == msgpcode.Float || c == msgpcode.Double:
		bits := 64
		if c == msgpcode.Float {
			bits = 32
		}
		v, err := d.DecodeFloat64()
		if err != nil {
			return nil, err
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("the float %v has no JSON form", v)
		}
		return strconv.AppendFloat(b, v, 'g', -1, bits), nil
	case msgpcode.IsString(c):
		s, err := readRaw(d, r)
		if err != nil {
			return nil, err
		}
		return appendJSONString(b, string(s)), nil
	case msgpcode.IsBin(c):
		v, err := readRaw(d, r)
		if err != nil {
			return nil, err
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v)
		return append(b, '"'), nil
	case isArray(c):
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		b = append(b, '[')
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendMsgpackJSON(b, d, r, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case isMap(c):
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		b = append(b, '{')
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			k, err := mapKey(d, r)
			if err != nil {
				return nil, fmt.Errorf("%w: JSON objects have string keys", err)
			}
			b = append(appendJSONString(b, k), ':')
			if b, err = appendMsgpackJSON(b, d, r, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case msgpcode.IsExt(c):
		id, n, err := d.DecodeExtHeader()
		if err != nil {
			return nil, err
		}
		if id != msgpackTimestamp {
			return nil, fmt.Errorf("the extension type %d has no JSON form", id)
		}
		ts, err := readTimestamp(d, n)
		if err != nil {
			return nil, err
		}
		return appendJSONString(b, ts.UTC().Format(time.RFC3339Nano)), nil
	}
	return nil, fmt.Errorf("unused MessagePack type byte 0x%02x", c)
}

// readTimestamp reads the n bytes of a timestamp extension (32, 64 or 96
// bit form).
func readTimestamp(d *msgpack.Decoder, n int) (time.Time, error) {
	var buf [12]byte
	switch n {
	case 4, 8, 12:
	default:
		return time.Time{}, fmt.Errorf("a timestamp of %d bytes; want 4, 8 or 12", n)
	}
	if err := d.ReadFull(buf[:n]); err != nil {
		return time.Time{}, err
	}
	switch n {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(buf[:4])), 0), nil
	case 8:
		v := binary.BigEndian.Uint64(buf[:8])
		nsec := int64(v >> 34)
		if nsec > 999_999_999 {
			return time.Time{}, errors.New("a timestamp with more than 999999999 nanoseconds")
		}
		return time.Unix(int64(v&(1<<34-1)), nsec), nil
	}
	nsec := int64(binary.BigEndian.Uint32(buf[:4]))
	if nsec > 999_999_999 {
		return time.Time{}, errors.New("a timestamp with more than 999999999 nanoseconds")
	}
	return time.Unix(int64(binary.BigEndian.Uint64(buf[4:12])), nsec), nil
}

// skipMsgpack skips the next value, with the nesting bound of
// appendMsgpackJSON (the library's Skip recurses without one) and without
// allocating for an extension's length: r holds what is left of the body.
func skipMsgpack(d *msgpack.Decoder, r *bytes.Reader, depth int) error {
	if depth > maxMsgpackDepth {
		return fmt.Errorf("arrays and maps nest more than %d deep", maxMsgpackDepth)
	}
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case isArray(c):
		n, err := d.DecodeArrayLen()
		if err != nil {
			return err
		}
		for range n {
			if err := skipMsgpack(d, r, depth+1); err != nil {
				return err
			}
		}
		return nil
	case isMap(c):
		n, err := d.DecodeMapLen()
		if err != nil {
			return err
		}
		for range 2 * n {
			if err := skipMsgpack(d, r, depth+1); err != nil {
				return err
			}
		}
		return nil
	case msgpcode.IsExt(c):
		_, n, err := d.DecodeExtHeader()
		if err != nil {
			return err
		}
		if n > r.Len() {
			return fmt.Errorf("an extension of %d bytes; %d are left", n, r.Len())
		}
		_, err = r.Seek(int64(n), io.SeekCurrent)
		return err
	case msgpcode.IsString(c), msgpcode.IsBin(c):
		_, err := readRaw(d, r)
		return err
	}
	return d.Skip() // a scalar
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}
