package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
//     MessagePack hub protocol Invocation with its varint length prefix. A
//     "json" entry is used as sent; without one, the "messagepack" entry is
//     decoded. Entries for other protocols are skipped.
//
// Arguments cross to the gateway's JSON as every MessagePack value does
// (protocol/msgpack_value.go): bin becomes {"$binary": base64}, which
// MessagePack clients receive as bin again and JSON clients as the base64
// string .NET writes for a byte[]; the timestamp extension becomes an RFC
// 3339 string; NaN, the infinities, other extensions and maps with keys that
// are not strings have no JSON form and are refused.

const (
	mimeMsgpack = "application/x-msgpack"
	mimeBinary  = "application/octet-stream"
)

// decodeMsgpackMessage reads an application/x-msgpack send body.
func decodeMsgpackMessage(body []byte) (target string, args json.RawMessage, err error) {
	r := protocol.NewValueReader(body)
	n, err := r.MapLen()
	if err != nil {
		return "", nil, fmt.Errorf("the body must be a map: %w", err)
	}
	hasTarget := false
	for range n {
		key, err := r.String()
		if err != nil {
			return "", nil, fmt.Errorf("a key: %w", err)
		}
		switch strings.ToLower(key) {
		case "target":
			if target, err = r.String(); err != nil {
				return "", nil, fmt.Errorf(`"target": %w`, err)
			}
			hasTarget = true
		case "arguments":
			switch {
			case r.Nil():
			case !r.Array():
				return "", nil, errors.New(`"arguments" must be an array`)
			default:
				if args, err = r.JSON(); err != nil {
					return "", nil, fmt.Errorf(`"arguments": %w`, err)
				}
			}
		default:
			if err := r.Skip(); err != nil {
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
	r := protocol.NewValueReader(body)
	n, err := r.MapLen()
	if err != nil {
		return "", nil, fmt.Errorf("the body must be a map of protocol names to serialized invocations: %w", err)
	}
	var jsonMsg, packMsg []byte
	var names []string
	for range n {
		name, err := r.String()
		if err != nil {
			return "", nil, fmt.Errorf("a protocol name: %w", err)
		}
		names = append(names, strconv.Quote(name))
		msg, err := r.Bytes()
		if err != nil {
			return "", nil, fmt.Errorf("protocol %q: the serialized message: %w", name, err)
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
		target, args, err = oneInvocation(protocol.JSON, jsonMsg)
		if err != nil {
			return "", nil, fmt.Errorf(`protocol "json": %w`, err)
		}
	case packMsg != nil:
		target, args, err = oneInvocation(protocol.MessagePack, packMsg)
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

// oneInvocation reads a frame that must hold exactly one Invocation, in
// codec's framing and encoding.
func oneInvocation(codec protocol.Codec, frame []byte) (string, json.RawMessage, error) {
	var msgs [][]byte
	if err := codec.Split(frame, func(m []byte) error {
		msgs = append(msgs, m)
		return nil
	}); err != nil {
		return "", nil, err
	}
	if len(msgs) != 1 {
		return "", nil, fmt.Errorf("%d messages, want one invocation", len(msgs))
	}
	m, err := codec.Parse(msgs[0])
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
