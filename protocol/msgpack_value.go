package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Values cross between the two hub protocols here. Inside the gateway every
// argument, result and stream item is JSON (that is what webhooks and the
// REST API carry); MessagePack clients send and receive MessagePack. The
// mapping, both ways:
//
//	MessagePack          JSON
//	nil                  null
//	bool                 true, false
//	int, uint            a number without fraction or exponent
//	float32, float64     a number (NaN and the infinities have no JSON form: refused)
//	str                  a string
//	bin                  {"$binary":"<standard base64>"}
//	array                an array
//	map                  an object; keys must be strings (others: refused)
//	timestamp (ext -1)   a string, RFC 3339 with nanoseconds, UTC
//	other ext types      refused
//
// The binary marker is what keeps bytes bytes across a JSON hop: an upstream
// receives a MessagePack client's byte array as {"$binary": …}, and an
// argument of that exact shape (one key, a base64 string) sent to a
// MessagePack client becomes bin again. JSON clients receive it as a plain
// base64 string, as ASP.NET Core's JSON protocol writes a byte[].
//
// A JSON number with a fraction or exponent, or an integer beyond the int64
// and uint64 ranges, becomes a float64.

// BinaryMarker is the one key of the JSON object that stands for MessagePack
// binary data.
const BinaryMarker = "$binary"

// maxValueDepth bounds the nesting of arrays and maps in one value, so a
// small message cannot drive deep recursion.
const maxValueDepth = 64

// errValue wraps the reasons a value cannot cross between the protocols.
var errValue = errors.New("value")

// ---- MessagePack writing

func appendMsgpackNil(dst []byte) []byte { return append(dst, 0xc0) }

func appendMsgpackBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 0xc3)
	}
	return append(dst, 0xc2)
}

func appendMsgpackInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0 && v <= 0x7f:
		return append(dst, byte(v))
	case v < 0 && v >= -32:
		return append(dst, byte(v))
	case v >= math.MinInt8 && v <= math.MaxInt8:
		return append(dst, 0xd0, byte(v))
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

func appendMsgpackUint(dst []byte, v uint64) []byte {
	if v <= math.MaxInt64 {
		return appendMsgpackInt(dst, int64(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
}

func appendMsgpackFloat(dst []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(v))
}

func appendMsgpackString(dst []byte, s string) []byte {
	n := len(s)
	switch {
	case n <= 31:
		dst = append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

func appendMsgpackBin(dst, b []byte) []byte {
	n := len(b)
	switch {
	case n <= math.MaxUint8:
		dst = append(dst, 0xc4, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(n))
	}
	return append(dst, b...)
}

func appendMsgpackArrayHeader(dst []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(dst, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(n))
}

func appendMsgpackMapHeader(dst []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(dst, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdf), uint32(n))
}

// appendJSONAsMsgpack appends the JSON value raw as MessagePack. What is
// not valid JSON, or is nested deeper than maxValueDepth, is an error.
func appendJSONAsMsgpack(dst []byte, raw json.RawMessage) ([]byte, error) {
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%w: not valid JSON", errValue)
	}
	dst, rest, err := jsonToMsgpack(dst, raw, 0)
	if err != nil {
		return nil, err
	}
	if i := skipSpace(rest, 0); i != len(rest) {
		return nil, fmt.Errorf("%w: trailing data after a JSON value", errValue)
	}
	return dst, nil
}

// jsonToMsgpack converts the JSON value at the start of b, which is valid
// JSON, and returns the rest of b.
func jsonToMsgpack(dst, b []byte, depth int) ([]byte, []byte, error) {
	if depth > maxValueDepth {
		return nil, nil, fmt.Errorf("%w: nested deeper than %d", errValue, maxValueDepth)
	}
	i := skipSpace(b, 0)
	if i >= len(b) {
		return nil, nil, fmt.Errorf("%w: a JSON value is missing", errValue)
	}
	b = b[i:]
	switch c := b[0]; {
	case c == 'n' && bytes.HasPrefix(b, []byte("null")):
		return appendMsgpackNil(dst), b[4:], nil
	case c == 't' && bytes.HasPrefix(b, []byte("true")):
		return appendMsgpackBool(dst, true), b[4:], nil
	case c == 'f' && bytes.HasPrefix(b, []byte("false")):
		return appendMsgpackBool(dst, false), b[5:], nil
	case c == '"':
		end, _ := skipString(b, 0)
		s, ok := decodeString(b[:end])
		if !ok {
			return nil, nil, fmt.Errorf("%w: bad JSON string", errValue)
		}
		return appendMsgpackString(dst, s), b[end:], nil
	case c == '[':
		return jsonArrayToMsgpack(dst, b, depth)
	case c == '{':
		if bin, rest, ok := binaryMarker(b); ok {
			return appendMsgpackBin(dst, bin), rest, nil
		}
		return jsonObjectToMsgpack(dst, b, depth)
	case c == '-' || (c >= '0' && c <= '9'):
		end := skipValue(b, 0)
		dst, err := appendJSONNumber(dst, b[:end])
		return dst, b[end:], err
	}
	return nil, nil, fmt.Errorf("%w: not a JSON value", errValue)
}

func appendJSONNumber(dst, num []byte) ([]byte, error) {
	s := string(num)
	if !bytes.ContainsAny(num, ".eE") {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return appendMsgpackInt(dst, v), nil
		}
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			return appendMsgpackUint(dst, v), nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil { // beyond float64: MessagePack has no form for it
		return nil, fmt.Errorf("%w: number %.20s… is out of range", errValue, s)
	}
	return appendMsgpackFloat(dst, v), nil
}

func jsonArrayToMsgpack(dst, b []byte, depth int) ([]byte, []byte, error) {
	n, ok := countElements(b)
	if !ok {
		return nil, nil, fmt.Errorf("%w: bad JSON array", errValue)
	}
	dst = appendMsgpackArrayHeader(dst, n)
	b = b[1:]
	for k := 0; k < n; k++ {
		var err error
		if dst, b, err = jsonToMsgpack(dst, b, depth+1); err != nil {
			return nil, nil, err
		}
		b = b[skipSpace(b, 0):]
		if len(b) > 0 && b[0] == ',' {
			b = b[1:]
		}
	}
	b = b[skipSpace(b, 0):]
	if len(b) == 0 || b[0] != ']' {
		return nil, nil, fmt.Errorf("%w: bad JSON array", errValue)
	}
	return dst, b[1:], nil
}

func jsonObjectToMsgpack(dst, b []byte, depth int) ([]byte, []byte, error) {
	n, ok := countElements(b)
	if !ok {
		return nil, nil, fmt.Errorf("%w: bad JSON object", errValue)
	}
	dst = appendMsgpackMapHeader(dst, n)
	b = b[1:]
	for k := 0; k < n; k++ {
		b = b[skipSpace(b, 0):]
		end, _ := skipString(b, 0)
		key, ok := decodeString(b[:end])
		if !ok {
			return nil, nil, fmt.Errorf("%w: bad JSON object key", errValue)
		}
		dst = appendMsgpackString(dst, key)
		b = b[end:]
		b = b[skipSpace(b, 0):]
		if len(b) == 0 || b[0] != ':' {
			return nil, nil, fmt.Errorf("%w: bad JSON object", errValue)
		}
		var err error
		if dst, b, err = jsonToMsgpack(dst, b[1:], depth+1); err != nil {
			return nil, nil, err
		}
		b = b[skipSpace(b, 0):]
		if len(b) > 0 && b[0] == ',' {
			b = b[1:]
		}
	}
	b = b[skipSpace(b, 0):]
	if len(b) == 0 || b[0] != '}' {
		return nil, nil, fmt.Errorf("%w: bad JSON object", errValue)
	}
	return dst, b[1:], nil
}

// countElements counts the elements of the JSON array or object that b
// starts with, without decoding them.
func countElements(b []byte) (int, bool) {
	closing := byte(']')
	if b[0] == '{' {
		closing = '}'
	}
	i := skipSpace(b, 1)
	if i < len(b) && b[i] == closing {
		return 0, true
	}
	n := 0
	for i < len(b) {
		if closing == '}' {
			end, _ := skipString(b, i)
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return 0, false
			}
			i++
		}
		end := skipValue(b, skipSpace(b, i))
		n++
		i = skipSpace(b, end)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case closing:
			return n, true
		default:
			return 0, false
		}
	}
	return 0, false
}

// binaryMarker recognises {"$binary":"<base64>"} at the start of b.
func binaryMarker(b []byte) (bin, rest []byte, ok bool) {
	end := skipValue(b, 0)
	var key, val []byte
	n := 0
	if !scanObject(b[:end], func(quoted []byte, escaped bool, v []byte) {
		n++
		key, val = propertyName(quoted, escaped), v
	}) || n != 1 || string(key) != BinaryMarker {
		return nil, nil, false
	}
	s, ok := decodeString(val)
	if !ok {
		return nil, nil, false
	}
	bin, err := base64.StdEncoding.DecodeString(s)
	// Only the canonical form: decoding skips line breaks, and a marker must
	// read back as it was written.
	if err != nil || base64.StdEncoding.EncodeToString(bin) != s {
		return nil, nil, false
	}
	return bin, b[end:], true
}

// ---- MessagePack reading

// msgpackReader reads MessagePack values from b, checking every length
// against what is left so that no claimed size allocates more than the
// message holds.
type msgpackReader struct {
	b []byte
}

var errShort = fmt.Errorf("%w: MessagePack value is cut short", errValue)

func (r *msgpackReader) byte1() (byte, error) {
	if len(r.b) < 1 {
		return 0, errShort
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

func (r *msgpackReader) take(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)) {
		return nil, errShort
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out, nil
}

func (r *msgpackReader) uint(size int) (uint64, error) {
	p, err := r.take(uint64(size))
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

// kind is what the next value is, as far as the hub protocol's structure
// needs to know.
type kind int

const (
	kindOther kind = iota
	kindNil
	kindArray
	kindMap
	kindString
	kindInt
)

// peekKind reports the kind of the next value without reading it.
func (r *msgpackReader) peekKind() kind {
	if len(r.b) == 0 {
		return kindOther
	}
	switch c := r.b[0]; {
	case c == 0xc0:
		return kindNil
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd:
		return kindArray
	case c&0xf0 == 0x80 || c == 0xde || c == 0xdf:
		return kindMap
	case c&0xe0 == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb:
		return kindString
	case c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3):
		return kindInt
	}
	return kindOther
}

// arrayLen reads an array header.
func (r *msgpackReader) arrayLen() (int, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c&0xf0 == 0x90:
		n = uint64(c & 0x0f)
	case c == 0xdc:
		n, err = r.uint(2)
	case c == 0xdd:
		n, err = r.uint(4)
	default:
		return 0, fmt.Errorf("%w: expected an array", errValue)
	}
	if err != nil {
		return 0, err
	}
	if n > uint64(len(r.b)) { // every element takes a byte at least
		return 0, errShort
	}
	return int(n), nil
}

// mapLen reads a map header.
func (r *msgpackReader) mapLen() (int, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c&0xf0 == 0x80:
		n = uint64(c & 0x0f)
	case c == 0xde:
		n, err = r.uint(2)
	case c == 0xdf:
		n, err = r.uint(4)
	default:
		return 0, fmt.Errorf("%w: expected a map", errValue)
	}
	if err != nil {
		return 0, err
	}
	if 2*n > uint64(len(r.b)) {
		return 0, errShort
	}
	return int(n), nil
}

// str reads a string.
func (r *msgpackReader) str() (string, error) {
	c, err := r.byte1()
	if err != nil {
		return "", err
	}
	var n uint64
	switch {
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xd9:
		n, err = r.uint(1)
	case c == 0xda:
		n, err = r.uint(2)
	case c == 0xdb:
		n, err = r.uint(4)
	default:
		return "", fmt.Errorf("%w: expected a string", errValue)
	}
	if err != nil {
		return "", err
	}
	p, err := r.take(n)
	return string(p), err
}

// int reads an integer of any width into an int64.
func (r *msgpackReader) int() (int64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c >= 0xd0 && c <= 0xd3:
		return r.signed(c)
	case c >= 0xcc && c <= 0xcf:
		v, err := r.uint(1 << (c - 0xcc))
		if err == nil && v > math.MaxInt64 {
			err = fmt.Errorf("%w: integer out of range", errValue)
		}
		return int64(v), err
	}
	return 0, fmt.Errorf("%w: expected an integer", errValue)
}

// signed reads the body of a signed integer whose marker c (0xd0 to 0xd3)
// was read.
func (r *msgpackReader) signed(c byte) (int64, error) {
	v, err := r.uint(1 << (c - 0xd0))
	switch c {
	case 0xd0:
		return int64(int8(v)), err
	case 0xd1:
		return int64(int16(v)), err
	case 0xd2:
		return int64(int32(v)), err
	}
	return int64(v), err
}

// bool reads a boolean.
func (r *msgpackReader) bool() (bool, error) {
	c, err := r.byte1()
	switch {
	case err != nil:
		return false, err
	case c == 0xc2:
		return false, nil
	case c == 0xc3:
		return true, nil
	}
	return false, fmt.Errorf("%w: expected a boolean", errValue)
}

// nilOrString reads nil ("", false) or a string (s, true).
func (r *msgpackReader) nilOrString() (string, bool, error) {
	if r.peekKind() == kindNil {
		r.b = r.b[1:]
		return "", false, nil
	}
	s, err := r.str()
	return s, true, err
}

// stringMap reads a map of strings to strings (hub message headers); nil
// reads as an empty map.
func (r *msgpackReader) stringMap() (map[string]string, error) {
	if r.peekKind() == kindNil {
		r.b = r.b[1:]
		return nil, nil
	}
	n, err := r.mapLen()
	if err != nil || n == 0 {
		return nil, err
	}
	m := make(map[string]string, n)
	for range n {
		k, err := r.str()
		if err != nil {
			return nil, err
		}
		v, err := r.str()
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// skip reads past one value of any kind.
func (r *msgpackReader) skip() error {
	_, err := r.appendJSON(nil, 0, true)
	return err
}

// json reads one value as JSON.
func (r *msgpackReader) json() (json.RawMessage, error) {
	return r.appendJSON(nil, 0, false)
}

// appendJSON reads one value and appends it as JSON (unless skipping, which
// still checks it).
func (r *msgpackReader) appendJSON(dst []byte, depth int, skipping bool) ([]byte, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", errValue, maxValueDepth)
	}
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 0x7f:
		return strconv.AppendInt(dst, int64(c), 10), nil
	case c >= 0xe0:
		return strconv.AppendInt(dst, int64(int8(c)), 10), nil
	case c&0xf0 == 0x80:
		return r.mapAsJSON(dst, uint64(c&0x0f), depth, skipping)
	case c&0xf0 == 0x90:
		return r.arrayAsJSON(dst, uint64(c&0x0f), depth, skipping)
	case c&0xe0 == 0xa0:
		return r.strAsJSON(dst, uint64(c&0x1f))
	}
	switch c {
	case 0xc0:
		return append(dst, "null"...), nil
	case 0xc2:
		return append(dst, "false"...), nil
	case 0xc3:
		return append(dst, "true"...), nil
	case 0xc4, 0xc5, 0xc6:
		n, err := r.uint(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		p, err := r.take(n)
		if err != nil {
			return nil, err
		}
		dst = append(dst, `{"`+BinaryMarker+`":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, p)
		return append(dst, `"}`...), nil
	case 0xca:
		v, err := r.uint(4)
		if err != nil {
			return nil, err
		}
		return appendJSONFloat(dst, float64(math.Float32frombits(uint32(v))), 32)
	case 0xcb:
		v, err := r.uint(8)
		if err != nil {
			return nil, err
		}
		return appendJSONFloat(dst, math.Float64frombits(v), 64)
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := r.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		return strconv.AppendUint(dst, v, 10), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		v, err := r.signed(c)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(dst, v, 10), nil
	case 0xd9, 0xda, 0xdb:
		n, err := r.uint(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return r.strAsJSON(dst, n)
	case 0xdc, 0xdd:
		n, err := r.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return r.arrayAsJSON(dst, n, depth, skipping)
	case 0xde, 0xdf:
		n, err := r.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return r.mapAsJSON(dst, n, depth, skipping)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9:
		return r.extAsJSON(dst, c)
	}
	return nil, fmt.Errorf("%w: 0x%02x is not a MessagePack type", errValue, c)
}

func appendJSONFloat(dst []byte, v float64, bits int) ([]byte, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("%w: NaN and infinities have no JSON form", errValue)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, bits), nil
}

func (r *msgpackReader) strAsJSON(dst []byte, n uint64) ([]byte, error) {
	p, err := r.take(n)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(p) {
		return nil, fmt.Errorf("%w: string is not UTF-8", errValue)
	}
	return appendJSONString(dst, string(p)), nil
}

func (r *msgpackReader) arrayAsJSON(dst []byte, n uint64, depth int, skipping bool) ([]byte, error) {
	if n > uint64(len(r.b)) {
		return nil, errShort
	}
	dst = append(dst, '[')
	for k := uint64(0); k < n; k++ {
		if k > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = r.appendJSON(dst, depth+1, skipping); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

func (r *msgpackReader) mapAsJSON(dst []byte, n uint64, depth int, skipping bool) ([]byte, error) {
	if 2*n > uint64(len(r.b)) {
		return nil, errShort
	}
	dst = append(dst, '{')
	for k := uint64(0); k < n; k++ {
		if k > 0 {
			dst = append(dst, ',')
		}
		if r.peekKind() != kindString {
			return nil, fmt.Errorf("%w: map keys must be strings to have a JSON form", errValue)
		}
		key, err := r.str()
		if err != nil {
			return nil, err
		}
		if !utf8.ValidString(key) {
			return nil, fmt.Errorf("%w: map key is not UTF-8", errValue)
		}
		dst = appendJSONString(dst, key)
		dst = append(dst, ':')
		if dst, err = r.appendJSON(dst, depth+1, skipping); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// extAsJSON reads an extension value: the timestamp (type -1) becomes an
// RFC 3339 string; other types have no JSON form.
func (r *msgpackReader) extAsJSON(dst []byte, c byte) ([]byte, error) {
	var n uint64
	var err error
	switch c {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n = 1 << (c - 0xd4)
	case 0xc7:
		n, err = r.uint(1)
	case 0xc8:
		n, err = r.uint(2)
	case 0xc9:
		n, err = r.uint(4)
	}
	if err != nil {
		return nil, err
	}
	typ, err := r.byte1()
	if err != nil {
		return nil, err
	}
	p, err := r.take(n)
	if err != nil {
		return nil, err
	}
	if int8(typ) != -1 {
		return nil, fmt.Errorf("%w: MessagePack extension type %d has no JSON form", errValue, int8(typ))
	}
	var t time.Time
	switch len(p) {
	case 4:
		t = time.Unix(int64(binary.BigEndian.Uint32(p)), 0)
	case 8:
		v := binary.BigEndian.Uint64(p)
		t = time.Unix(int64(v&0x3ffffffff), int64(v>>34))
	case 12:
		t = time.Unix(int64(binary.BigEndian.Uint64(p[4:])), int64(binary.BigEndian.Uint32(p[:4])))
	default:
		return nil, fmt.Errorf("%w: a timestamp of %d bytes", errValue, len(p))
	}
	return appendJSONString(dst, t.UTC().Format(time.RFC3339Nano)), nil
}

// ValueReader reads MessagePack values one after another, with the same
// limits as the hub protocol (every length checked against what is left,
// nesting bounded), and converts them to JSON with the mapping above: the
// REST API reads its MessagePack bodies with it, so that bytes from any
// source reach the gateway in the same form. Errors say what is wrong in
// words fit for the sender.
type ValueReader struct{ r msgpackReader }

// NewValueReader reads b.
func NewValueReader(b []byte) *ValueReader { return &ValueReader{r: msgpackReader{b: b}} }

// Len is the number of bytes not read yet.
func (v *ValueReader) Len() int { return len(v.r.b) }

// MapLen reads a map header: the number of key/value pairs that follow.
func (v *ValueReader) MapLen() (int, error) { return v.r.mapLen() }

// String reads a str.
func (v *ValueReader) String() (string, error) { return v.r.str() }

// Nil reads a nil and reports true, or reads nothing and reports false.
func (v *ValueReader) Nil() bool {
	if v.r.peekKind() == kindNil {
		v.r.b = v.r.b[1:]
		return true
	}
	return false
}

// Bytes reads the contents of a bin or a str.
func (v *ValueReader) Bytes() ([]byte, error) {
	c, err := v.r.byte1()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xc4 || c == 0xd9:
		n, err = v.r.uint(1)
	case c == 0xc5 || c == 0xda:
		n, err = v.r.uint(2)
	case c == 0xc6 || c == 0xdb:
		n, err = v.r.uint(4)
	default:
		return nil, fmt.Errorf("%w: expected bin or str", errValue)
	}
	if err != nil {
		return nil, err
	}
	return v.r.take(n)
}

// JSON reads one value of any kind as JSON.
func (v *ValueReader) JSON() (json.RawMessage, error) { return v.r.json() }

// Array reports whether the next value is an array.
func (v *ValueReader) Array() bool { return v.r.peekKind() == kindArray }

// Skip reads past one value.
func (v *ValueReader) Skip() error { return v.r.skip() }
