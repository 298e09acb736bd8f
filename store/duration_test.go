package store

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr string // substring of the error; "" = no error
	}{
		{name: "string", in: `"10s"`, want: 10 * time.Second},
		{name: "compound string", in: `"1m30.5s"`, want: 90*time.Second + 500*time.Millisecond},
		{name: "milliseconds", in: `1500`, want: 1500 * time.Millisecond},
		{name: "fractional milliseconds", in: `0.5`, want: 500 * time.Microsecond},
		{name: "zero", in: `0`, want: 0},
		{name: "null keeps value", in: `null`, want: 7},
		{name: "bad string", in: `"ten seconds"`, wantErr: `"ten seconds"`},
		{name: "unitless string", in: `"10"`, wantErr: `"10"`},
		{name: "bool", in: `true`, wantErr: "true"},
		{name: "object", in: `{"s":1}`, wantErr: `{"s":1}`},
		{name: "negative string", in: `"-1s"`, wantErr: "negative"},
		{name: "negative number", in: `-5`, wantErr: "negative"},
		{name: "too large", in: `1e300`, wantErr: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := Duration(7)
			err := json.Unmarshal([]byte(tt.in), &d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Unmarshal(%s): got error %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if time.Duration(d) != tt.want {
				t.Errorf("Unmarshal(%s): got %v, want %v", tt.in, time.Duration(d), tt.want)
			}
		})
	}
}

func TestDurationMarshal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    Duration
		want string
	}{
		{Duration(10 * time.Second), `"10s"`},
		{Duration(1500 * time.Millisecond), `"1.5s"`},
		{0, `"0s"`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.d)
		if err != nil || string(got) != tt.want {
			t.Errorf("Marshal(%d): got %s %v, want %s", tt.d, got, err, tt.want)
		}
	}
	// omitempty drops a zero timeout from an upstream.
	b, err := json.Marshal(Upstream{Hub: "h", Name: "n"})
	if err != nil || strings.Contains(string(b), "timeout") {
		t.Errorf("Upstream with zero Timeout: got %s %v, want no timeout field", b, err)
	}
}

// FuzzDurationJSON checks that any accepted input round-trips through
// MarshalJSON unchanged and that no input panics.
func FuzzDurationJSON(f *testing.F) {
	for _, s := range []string{`"10s"`, `1500`, `0.5`, `null`, `"-1s"`, `1e300`, `"1h2m3.5s"`, `-0`, `"\u0031s"`, `9223372036854`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d Duration
		if err := d.UnmarshalJSON(in); err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("UnmarshalJSON(%q) accepted a negative duration %v", in, time.Duration(d))
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", time.Duration(d), err)
		}
		var back Duration
		if err := json.Unmarshal(out, &back); err != nil || back != d {
			t.Fatalf("round trip of %q: %s gave %v %v, want %v", in, out, time.Duration(back), err, time.Duration(d))
		}
	})
}
