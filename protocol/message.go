package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// RecordSeparator ends every JSON hub message and the handshake.
const RecordSeparator byte = 0x1E

// Message types.
const (
	TypeInvocation       = 1
	TypeStreamItem       = 2
	TypeCompletion       = 3
	TypeStreamInvocation = 4
	TypeCancelInvocation = 5
	TypePing             = 6
	TypeClose            = 7
	TypeAck              = 8
	TypeSequence         = 9
)

var (
	// ErrHandshake reports a handshake request the server cannot accept.
	ErrHandshake = errors.New("protocol: bad handshake")
	// ErrHandshakeRejected reports a server's {"error":...} handshake answer.
	ErrHandshakeRejected = errors.New("protocol: handshake rejected")
	// ErrIncomplete reports a frame that does not end with RecordSeparator.
	ErrIncomplete = errors.New("protocol: message is incomplete")
	// ErrMalformed reports a message that is not valid for its type.
	ErrMalformed = errors.New("protocol: malformed message")
)

// Message is one decoded hub message. Raw JSON fields stay raw (not decoded)
// so the gateway can forward arguments and results without re-encoding them.
type Message struct {
	Type            int
	InvocationID    string          // "" when absent
	HasInvocationID bool            // distinguishes absent from ""
	Target          string          // Invocation, StreamInvocation
	Arguments       json.RawMessage // a JSON array; nil when absent
	StreamIDs       []string        // Invocation, StreamInvocation
	Item            json.RawMessage // StreamItem
	Result          json.RawMessage // Completion; nil when absent, "null" is a value
	Error           string          // Completion, Close
	AllowReconnect  bool            // Close
	SequenceID      int64           // Ack, Sequence
	Headers         map[string]string
}

// SplitMessages calls fn with each RecordSeparator-terminated message in
// frame (without the separator), in order, and stops at the first error fn
// returns, returning it unchanged. The whole frame is checked before fn is
// first called, so a bad frame has no effect: a frame that does not end with
// the separator (an empty one included) gives ErrIncomplete, an empty message
// between two separators gives ErrMalformed.
func SplitMessages(frame []byte, fn func(msg []byte) error) error {
	if len(frame) == 0 || frame[len(frame)-1] != RecordSeparator {
		return ErrIncomplete
	}
	if frame[0] == RecordSeparator || bytes.Contains(frame, []byte{RecordSeparator, RecordSeparator}) {
		return fmt.Errorf("%w: empty message in frame", ErrMalformed)
	}
	for len(frame) > 0 {
		i := bytes.IndexByte(frame, RecordSeparator)
		if err := fn(frame[:i]); err != nil {
			return err
		}
		frame = frame[i+1:]
	}
	return nil
}

// ParseMessage decodes and validates one message (without its separator).
// Messages of unknown types (below 1 or above 9) decode to a Message with only
// Type set and a nil error, for forward compatibility: callers skip them.
func ParseMessage(msg []byte) (Message, error) {
	var m Message
	if !json.Valid(msg) {
		return m, fmt.Errorf("%w: not valid JSON", ErrMalformed)
	}
	// Work on a private copy so the Message never aliases the caller's
	// buffer, which transports reuse; one allocation covers all raw fields.
	buf := bytes.Clone(msg)
	var w wire
	if !scanObject(buf, w.set) {
		return m, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if w.typ == nil {
		return m, fmt.Errorf("%w: \"type\" is missing", ErrMalformed)
	}
	t, ok := parseInt(w.typ)
	if !ok || int64(int(t)) != t {
		return m, fmt.Errorf("%w: \"type\" must be an integer", ErrMalformed)
	}
	m.Type = int(t)
	if t < TypeInvocation || t > TypeSequence {
		return m, nil
	}
	name := typeNames[t]
	if err := m.decode(&w); err != nil {
		return Message{Type: m.Type}, fmt.Errorf("%w: %s: %s", ErrMalformed, name, err)
	}
	return m, nil
}

// typeNames names the message types in error texts.
var typeNames = [...]string{
	TypeInvocation:       "invocation",
	TypeStreamItem:       "stream item",
	TypeCompletion:       "completion",
	TypeStreamInvocation: "stream invocation",
	TypeCancelInvocation: "cancel invocation",
	TypePing:             "ping",
	TypeClose:            "close",
	TypeAck:              "ack",
	TypeSequence:         "sequence",
}

// fieldError is the detail of an ErrMalformed; ParseMessage adds the
// sentinel and the message type in front of it.
type fieldError string

func (e fieldError) Error() string { return string(e) }

// decode fills m from the raw properties of a message of a known type.
func (m *Message) decode(w *wire) error {
	switch m.Type {
	case TypeInvocation, TypeStreamInvocation:
		if err := m.invocationID(w, m.Type == TypeStreamInvocation); err != nil {
			return err
		}
		s, ok := decodeString(w.target)
		if !ok || s == "" {
			return fieldError(`"target" must be a non-empty string`)
		}
		m.Target = s
		if w.arguments == nil || w.arguments[0] != '[' {
			return fieldError(`"arguments" must be an array`)
		}
		m.Arguments = json.RawMessage(w.arguments)
		if !isNull(w.streamIDs) {
			ids, ok := decodeStrings(w.streamIDs)
			if !ok {
				return fieldError(`"streamIds" must be an array of strings`)
			}
			m.StreamIDs = ids
		}
	case TypeStreamItem:
		if err := m.invocationID(w, true); err != nil {
			return err
		}
		if w.item == nil {
			return fieldError(`"item" is missing`)
		}
		m.Item = json.RawMessage(w.item)
	case TypeCompletion:
		if err := m.invocationID(w, true); err != nil {
			return err
		}
		if err := m.errorText(w); err != nil {
			return err
		}
		if w.result != nil {
			if !isNull(w.err) {
				return fieldError(`"result" and "error" are mutually exclusive`)
			}
			m.Result = json.RawMessage(w.result)
		}
	case TypeCancelInvocation:
		if err := m.invocationID(w, true); err != nil {
			return err
		}
	case TypeClose:
		if err := m.errorText(w); err != nil {
			return err
		}
		switch string(w.allowReconnect) {
		case "", "null", "false":
		case "true":
			m.AllowReconnect = true
		default:
			return fieldError(`"allowReconnect" must be a boolean`)
		}
	case TypeAck, TypeSequence:
		n, ok := parseInt(w.sequenceID)
		if !ok || n < 0 {
			return fieldError(`"sequenceId" must be a non-negative integer`)
		}
		m.SequenceID = n
	}
	if m.Type <= TypeCancelInvocation && !isNull(w.headers) {
		h, ok := decodeHeaders(w.headers)
		if !ok {
			return fieldError(`"headers" must be an object of strings`)
		}
		m.Headers = h
	}
	return nil
}

// invocationID sets the invocation id, which must be a non-empty string when
// present and must be present when required.
func (m *Message) invocationID(w *wire, required bool) error {
	if isNull(w.invocationID) {
		if required {
			return fieldError(`"invocationId" is missing`)
		}
		return nil
	}
	s, ok := decodeString(w.invocationID)
	if !ok || s == "" {
		return fieldError(`"invocationId" must be a non-empty string`)
	}
	m.InvocationID, m.HasInvocationID = s, true
	return nil
}

// errorText sets the optional "error" property.
func (m *Message) errorText(w *wire) error {
	if isNull(w.err) {
		return nil
	}
	s, ok := decodeString(w.err)
	if !ok {
		return fieldError(`"error" must be a string`)
	}
	m.Error = s
	return nil
}

// isNull reports whether a raw property is absent or JSON null.
func isNull(raw []byte) bool {
	return raw == nil || string(raw) == "null"
}

// decodeStrings decodes a raw JSON array of strings. (Decoding into a local
// keeps the Message itself off the heap.)
func decodeStrings(raw []byte) ([]string, bool) {
	var v []string
	if raw[0] != '[' || json.Unmarshal(raw, &v) != nil {
		return nil, false
	}
	return v, true
}

// decodeHeaders decodes a raw JSON object of strings.
func decodeHeaders(raw []byte) (map[string]string, bool) {
	var v map[string]string
	if raw[0] != '{' || json.Unmarshal(raw, &v) != nil {
		return nil, false
	}
	return v, true
}
