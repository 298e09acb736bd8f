package upstream

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestCheckSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		name   string
		secret string
		want   string // "" for valid, else a part of the error
	}{
		{name: "made by NewSecret", secret: NewSecret()},
		{name: "worked example", secret: "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="},
		{name: "24 bytes", secret: "whsec_" + b64(24)},
		{name: "64 bytes", secret: "whsec_" + b64(64)},
		{name: "no prefix", secret: b64(32), want: `must start with "whsec_"`},
		{name: "empty", secret: "", want: `must start with "whsec_"`},
		{name: "prefix only", secret: "whsec_", want: "encodes 0 bytes"},
		{name: "not base64", secret: "whsec_!!!!", want: "standard base64"},
		{name: "url-safe base64", secret: "whsec_" + strings.Repeat("-_", 22), want: "standard base64"},
		{name: "missing padding", secret: "whsec_" + strings.TrimRight(b64(32), "="), want: "standard base64"},
		{name: "too short", secret: "whsec_" + b64(16), want: "encodes 16 bytes"},
		{name: "too long", secret: "whsec_" + b64(65), want: "encodes 65 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckSecret(tt.secret)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CheckSecret = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrMalformedSecret)):
				t.Fatalf("CheckSecret = %v, want ErrMalformedSecret mentioning %q", err, tt.want)
			case err != nil && len(tt.secret) > len(SecretPrefix)+4 && strings.Contains(err.Error(), tt.secret[len(SecretPrefix):]):
				t.Errorf("the error %q quotes the secret", err)
			}
		})
	}
}
