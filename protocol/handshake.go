package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/switchboard-gw/switchboard/input"
)

// HandshakeRequest is the client's first message.
type HandshakeRequest struct {
	Protocol string `json:"protocol"`
	Version  int    `json:"version"`
}

// supported lists the hub protocols this package speaks (each has a Codec)
// and the handshake versions accepted for each (2 means the client asked
// for stateful reconnect).
var supported = []struct {
	name       string
	minVersion int
	maxVersion int
}{
	{name: "json", minVersion: 1, maxVersion: 2},
	{name: "messagepack", minVersion: 1, maxVersion: 2},
}

// HandshakeOK is the server's answer accepting a handshake.
var HandshakeOK = []byte("{}\x1e")

// ParseHandshakeRequest parses the first frame a client sent: one JSON object
// and RecordSeparator, possibly followed by hub messages in the same frame,
// returned as rest (which may be empty and aliases frame). Errors wrap
// ErrHandshake and say what is wrong in words fit for the client.
func ParseHandshakeRequest(frame []byte) (req HandshakeRequest, rest []byte, err error) {
	i := bytes.IndexByte(frame, RecordSeparator)
	if i < 0 {
		return req, nil, fmt.Errorf("%w: handshake is incomplete", ErrHandshake)
	}
	obj, rest := frame[:i], frame[i+1:]
	var raw struct{ Protocol, Version []byte }
	ok := json.Valid(obj) && scanObject(obj, func(quoted []byte, escaped bool, val []byte) {
		switch string(propertyName(quoted, escaped)) {
		case "protocol":
			raw.Protocol = val
		case "version":
			raw.Version = val
		}
	})
	if !ok {
		return req, nil, fmt.Errorf("%w: handshake is not a JSON object", ErrHandshake)
	}
	if isNull(raw.Protocol) {
		return req, nil, fmt.Errorf("%w: \"protocol\" is missing", ErrHandshake)
	}
	name, ok := decodeString(raw.Protocol)
	if !ok || name == "" {
		return req, nil, fmt.Errorf("%w: \"protocol\" must be a non-empty string", ErrHandshake)
	}
	if isNull(raw.Version) {
		return req, nil, fmt.Errorf("%w: \"version\" is missing", ErrHandshake)
	}
	v, ok := parseInt(raw.Version)
	if !ok {
		return req, nil, fmt.Errorf("%w: \"version\" must be an integer", ErrHandshake)
	}
	for _, p := range supported {
		if p.name != name {
			continue
		}
		if v < int64(p.minVersion) || v > int64(p.maxVersion) {
			return req, nil, fmt.Errorf("%w: version %d of the %s protocol is not supported", ErrHandshake, v, name)
		}
		return HandshakeRequest{Protocol: name, Version: int(v)}, rest, nil
	}
	return req, nil, fmt.Errorf("%w: unsupported protocol %s", ErrHandshake, input.Quote(name)) // cut: it reaches logs and spans
}

// ParseHandshakeResponse parses the server's answer to the handshake (client
// side). rest holds the bytes after the separator, hub messages the server
// sent in the same frame. An {"error":"x"} answer gives an error wrapping
// ErrHandshakeRejected with text x; anything else that is not an answer
// wraps ErrHandshake.
func ParseHandshakeResponse(frame []byte) (rest []byte, err error) {
	i := bytes.IndexByte(frame, RecordSeparator)
	if i < 0 {
		return nil, fmt.Errorf("%w: handshake response is incomplete", ErrHandshake)
	}
	obj, rest := frame[:i], frame[i+1:]
	var raw struct{ Error, Type []byte }
	ok := json.Valid(obj) && scanObject(obj, func(quoted []byte, escaped bool, val []byte) {
		switch string(propertyName(quoted, escaped)) {
		case "error":
			raw.Error = val
		case "type":
			raw.Type = val
		}
	})
	if !ok {
		return nil, fmt.Errorf("%w: handshake response is not a JSON object", ErrHandshake)
	}
	if raw.Type != nil {
		// A hub message where the answer should be: the server skipped it.
		return nil, fmt.Errorf("%w: expected a handshake response from the server", ErrHandshake)
	}
	if isNull(raw.Error) {
		return rest, nil
	}
	msg, ok := decodeString(raw.Error)
	if !ok {
		return nil, fmt.Errorf("%w: handshake response \"error\" must be a string", ErrHandshake)
	}
	if msg == "" {
		// The JS client treats an empty error as success; so do we.
		return rest, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrHandshakeRejected, msg)
}

// AppendHandshakeError appends the server's answer refusing a handshake:
// {"error":msg} and RecordSeparator.
func AppendHandshakeError(dst []byte, msg string) []byte {
	dst = append(dst, `{"error":`...)
	dst = appendJSONString(dst, msg)
	return append(dst, '}', RecordSeparator)
}

// AppendHandshakeRequest appends a client's handshake request.
func AppendHandshakeRequest(dst []byte, protocol string, version int) []byte {
	dst = append(dst, `{"protocol":`...)
	dst = appendJSONString(dst, protocol)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(version), 10)
	return append(dst, '}', RecordSeparator)
}
