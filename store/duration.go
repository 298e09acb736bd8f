package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Duration is a time.Duration that marshals to JSON as a Go duration string
// ("10s") and unmarshals from either such a string or a number of
// milliseconds (what a JavaScript admin tool is likely to send). Negative
// values are refused: every duration stored here is a timeout or a TTL.
type Duration time.Duration

// String returns the duration in Go syntax ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts "1m30s" or 90000 (milliseconds). null leaves d as it
// is, as encoding/json does for other types. Errors name the bad value.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	var v time.Duration
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("store: bad duration %s: %w", b, err)
		}
		p, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("store: bad duration %q: want a Go duration such as \"10s\" or milliseconds", s)
		}
		v = p
	} else {
		var ms float64
		if err := json.Unmarshal(b, &ms); err != nil {
			return fmt.Errorf("store: bad duration %s: want a Go duration such as \"10s\" or milliseconds", b)
		}
		ns := ms * float64(time.Millisecond)
		if math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return fmt.Errorf("store: bad duration %s: out of range", b)
		}
		v = time.Duration(ns)
	}
	if v < 0 {
		return fmt.Errorf("store: bad duration %s: must not be negative", b)
	}
	*d = Duration(v)
	return nil
}
