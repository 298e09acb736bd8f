package protocol

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// wire holds the raw values of the properties a hub message may carry, each
// nil when absent. encoding/json matches property names case-insensitively,
// but the hub protocol is case-sensitive ("Type" is not "type"), so messages
// are cut into properties by scanObject rather than by json.Unmarshal.
type wire struct {
	typ, invocationID, target, arguments, streamIDs []byte
	item, result, err, allowReconnect, sequenceID   []byte
	headers                                         []byte
}

// scanObject calls set with each top-level property of b, in order, giving
// its quoted name, whether the name has escapes, and its raw value (capped so
// appending to it cannot overwrite b). b must already have passed json.Valid.
// It reports false when b is not a JSON object.
func scanObject(b []byte, set func(quoted []byte, escaped bool, val []byte)) bool {
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return true
	}
	for {
		keyEnd, escaped := skipString(b, i)
		key := b[i:keyEnd]
		i = skipSpace(b, keyEnd)  // at ':'
		i = skipSpace(b, i+1)     // at the value
		valEnd := skipValue(b, i) // just past the value
		set(key, escaped, b[i:valEnd:valEnd])
		i = skipSpace(b, valEnd) // at ',' or '}'
		if b[i] == '}' {
			return true
		}
		i = skipSpace(b, i+1)
	}
}

// set records one property for scanObject; unknown names are ignored and
// later duplicates overwrite earlier ones, as with encoding/json.
func (w *wire) set(quoted []byte, escaped bool, val []byte) {
	if f := w.field(propertyName(quoted, escaped)); f != nil {
		*f = val
	}
}

// field returns where the named property goes, or nil.
func (w *wire) field(name []byte) *[]byte {
	switch string(name) { // no allocation: the conversion is only switched on
	case "type":
		return &w.typ
	case "invocationId":
		return &w.invocationID
	case "target":
		return &w.target
	case "arguments":
		return &w.arguments
	case "streamIds":
		return &w.streamIDs
	case "item":
		return &w.item
	case "result":
		return &w.result
	case "error":
		return &w.err
	case "allowReconnect":
		return &w.allowReconnect
	case "sequenceId":
		return &w.sequenceID
	case "headers":
		return &w.headers
	}
	return nil
}

// propertyName returns the unquoted name of a property.
func propertyName(quoted []byte, escaped bool) []byte {
	if escaped {
		// A name spelt with escapes ("\u0074ype") is still that name.
		var s string
		if json.Unmarshal(quoted, &s) != nil {
			return nil
		}
		return []byte(s)
	}
	return quoted[1 : len(quoted)-1]
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at b[i] (a
// quote) and whether it contains escapes.
func skipString(b []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++ // the escaped byte cannot end the string
		case '"':
			return j + 1, escaped
		}
	}
	return len(b), escaped
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := skipString(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := skipString(b, j)
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default: // number, true, false, null
		j := i
		for ; j < len(b); j++ {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return j
			}
		}
		return j
	}
}

// decodeString decodes a raw JSON string value; ok is false if raw is not a
// string. Invalid UTF-8 becomes U+FFFD, as with encoding/json.
func decodeString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	return unmarshalString(raw)
}

// unmarshalString is decodeString's slow path, kept apart because the
// variable json.Unmarshal writes to lives on the heap.
func unmarshalString(raw []byte) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// parseInt parses a raw JSON number that is an integer literal (no fraction,
// no exponent) fitting in an int64.
func parseInt(raw []byte) (int64, bool) {
	neg := len(raw) > 0 && raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n), true
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}

// SplitArray returns the elements of arr, a JSON array that has passed
// json.Valid (a parsed Message's Arguments have), as json.Unmarshal into a
// []json.RawMessage would, without validating and scanning arr a second
// time. Each element is capped, so appending to it cannot overwrite arr. ok
// is false when arr is not an array; input that is not valid JSON gives
// unspecified elements, never a panic.
func SplitArray(arr []byte) (elems []json.RawMessage, ok bool) {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return nil, false
	}
	i = skipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return []json.RawMessage{}, true
	}
	for i < len(arr) {
		end := skipValue(arr, i)
		elems = append(elems, json.RawMessage(arr[i:end:end]))
		i = skipSpace(arr, end)
		if i >= len(arr) || arr[i] == ']' {
			break
		}
		i = skipSpace(arr, i+1) // past the comma; always forward
	}
	return elems, true
}
