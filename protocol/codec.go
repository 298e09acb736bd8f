package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Codec is one hub protocol: how a connection's frames split into
// messages, how a message decodes, and how the server's messages encode. A
// connection holds the codec its handshake chose; a broadcast is encoded
// once per codec in use and the same bytes go to every recipient of that
// codec. JSON and MessagePack are the two.
//
// Values (arguments, results, items) are JSON on the gateway's side of a
// codec whatever the wire carries; see msgpack_value.go for how they map
// to MessagePack and how binary data keeps its form across a JSON hop.
type Codec interface {
	// Name is the protocol's name in the handshake: "json", "messagepack".
	Name() string
	// Binary reports whether the protocol's frames are binary (WebSocket
	// binary frames, application/octet-stream), which some transports
	// cannot carry.
	Binary() bool
	// Split calls fn with each message of a frame, as SplitMessages and
	// SplitBinaryMessages do.
	Split(frame []byte, fn func(msg []byte) error) error
	// Parse decodes one message, as ParseMessage and ParseBinaryMessage do.
	Parse(msg []byte) (Message, error)

	// The encoders append one framed message. Those taking values fail only
	// for a value the protocol cannot carry, and then leave dst as it was.
	AppendInvocation(dst []byte, invocationID, target string, args json.RawMessage) ([]byte, error)
	AppendCompletion(dst []byte, invocationID string, result json.RawMessage, errMsg string) ([]byte, error)
	AppendStreamItem(dst []byte, invocationID string, item json.RawMessage) ([]byte, error)
	AppendCancelInvocation(dst []byte, invocationID string) []byte
	AppendPing(dst []byte) []byte
	AppendClose(dst []byte, errMsg string, allowReconnect bool) []byte
	AppendAck(dst []byte, sequenceID int64) []byte
	AppendSequence(dst []byte, sequenceID int64) []byte
}

// The two codecs.
var (
	JSON        Codec = jsonCodec{}
	MessagePack Codec = msgpackCodec{}
)

// CodecFor returns the codec of a protocol name from a handshake.
func CodecFor(name string) (Codec, bool) {
	switch name {
	case "json":
		return JSON, true
	case "messagepack":
		return MessagePack, true
	}
	return nil, false
}

type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }
func (jsonCodec) Binary() bool { return false }

func (jsonCodec) Split(frame []byte, fn func(msg []byte) error) error {
	return SplitMessages(frame, fn)
}

func (jsonCodec) Parse(msg []byte) (Message, error) { return ParseMessage(msg) }

func (jsonCodec) AppendInvocation(dst []byte, invocationID, target string, args json.RawMessage) ([]byte, error) {
	args, err := withoutBinaryMarkers(args)
	if err != nil {
		return dst, fmt.Errorf("protocol: arguments: %w", err)
	}
	return AppendInvocation(dst, invocationID, target, args), nil
}

func (jsonCodec) AppendCompletion(dst []byte, invocationID string, result json.RawMessage, errMsg string) ([]byte, error) {
	result, err := withoutBinaryMarkers(result)
	if err != nil {
		return dst, fmt.Errorf("protocol: result: %w", err)
	}
	return AppendCompletion(dst, invocationID, result, errMsg), nil
}

func (jsonCodec) AppendStreamItem(dst []byte, invocationID string, item json.RawMessage) ([]byte, error) {
	item, err := withoutBinaryMarkers(item)
	if err != nil {
		return dst, fmt.Errorf("protocol: item: %w", err)
	}
	return AppendStreamItem(dst, invocationID, item), nil
}

func (jsonCodec) AppendCancelInvocation(dst []byte, id string) []byte {
	return AppendCancelInvocation(dst, id)
}
func (jsonCodec) AppendPing(dst []byte) []byte { return AppendPing(dst) }
func (jsonCodec) AppendClose(dst []byte, errMsg string, allowReconnect bool) []byte {
	return AppendClose(dst, errMsg, allowReconnect)
}
func (jsonCodec) AppendAck(dst []byte, id int64) []byte      { return AppendAck(dst, id) }
func (jsonCodec) AppendSequence(dst []byte, id int64) []byte { return AppendSequence(dst, id) }

// withoutBinaryMarkers returns raw with every binary marker object replaced
// by its base64 string, as a JSON client reads a byte array. raw is
// returned as it is, without a copy, when it holds no marker.
func withoutBinaryMarkers(raw json.RawMessage) (json.RawMessage, error) {
	if raw == nil || !bytes.Contains(raw, []byte(`"`+BinaryMarker+`"`)) {
		return raw, nil
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%w: not valid JSON", errValue)
	}
	out, rest, err := appendWithoutMarkers(make([]byte, 0, len(raw)), raw, 0)
	if err != nil {
		return nil, err
	}
	return append(out, rest...), nil
}

// appendWithoutMarkers copies the valid JSON value at the start of b,
// rewriting markers, and returns the rest of b.
func appendWithoutMarkers(dst, b []byte, depth int) ([]byte, []byte, error) {
	if depth > maxValueDepth {
		return nil, nil, fmt.Errorf("%w: nested deeper than %d", errValue, maxValueDepth)
	}
	i := skipSpace(b, 0)
	dst, b = append(dst, b[:i]...), b[i:]
	switch b[0] {
	case '{':
		if bin, rest, ok := binaryMarker(b); ok { // canonical base64, so this is the marker's string
			return appendJSONString(dst, base64.StdEncoding.EncodeToString(bin)), rest, nil
		}
		fallthrough
	case '[':
		closing := byte(']')
		if b[0] == '{' {
			closing = '}'
		}
		dst, b = append(dst, b[0]), b[1:]
		for {
			i := skipSpace(b, 0)
			dst, b = append(dst, b[:i]...), b[i:]
			if b[0] == closing {
				return append(dst, closing), b[1:], nil
			}
			if closing == '}' { // the key and its colon
				end, _ := skipString(b, 0)
				j := skipSpace(b, end)
				dst, b = append(dst, b[:j+1]...), b[j+1:]
			}
			var err error
			if dst, b, err = appendWithoutMarkers(dst, b, depth+1); err != nil {
				return nil, nil, err
			}
			i = skipSpace(b, 0)
			dst, b = append(dst, b[:i]...), b[i:]
			if b[0] == ',' {
				dst, b = append(dst, ','), b[1:]
			}
		}
	}
	end := skipValue(b, 0)
	return append(dst, b[:end]...), b[end:], nil
}

type msgpackCodec struct{}

func (msgpackCodec) Name() string { return "messagepack" }
func (msgpackCodec) Binary() bool { return true }

func (msgpackCodec) Split(frame []byte, fn func(msg []byte) error) error {
	return SplitBinaryMessages(frame, fn)
}

func (msgpackCodec) Parse(msg []byte) (Message, error) { return ParseBinaryMessage(msg) }

func (msgpackCodec) AppendInvocation(dst []byte, invocationID, target string, args json.RawMessage) ([]byte, error) {
	return AppendBinaryInvocation(dst, invocationID, target, args)
}

func (msgpackCodec) AppendCompletion(dst []byte, invocationID string, result json.RawMessage, errMsg string) ([]byte, error) {
	return AppendBinaryCompletion(dst, invocationID, result, errMsg)
}

func (msgpackCodec) AppendStreamItem(dst []byte, invocationID string, item json.RawMessage) ([]byte, error) {
	return AppendBinaryStreamItem(dst, invocationID, item)
}

func (msgpackCodec) AppendCancelInvocation(dst []byte, id string) []byte {
	return AppendBinaryCancelInvocation(dst, id)
}
func (msgpackCodec) AppendPing(dst []byte) []byte { return AppendBinaryPing(dst) }
func (msgpackCodec) AppendClose(dst []byte, errMsg string, allowReconnect bool) []byte {
	return AppendBinaryClose(dst, errMsg, allowReconnect)
}
func (msgpackCodec) AppendAck(dst []byte, id int64) []byte      { return AppendBinaryAck(dst, id) }
func (msgpackCodec) AppendSequence(dst []byte, id int64) []byte { return AppendBinarySequence(dst, id) }
