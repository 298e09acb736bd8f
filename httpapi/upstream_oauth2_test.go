package httpapi

import (
	"strings"
	"testing"
)

func TestOAuth2InputValidate(t *testing.T) {
	good := func() *oauth2Input {
		return &oauth2Input{TokenURL: "https://idp.example/token", ClientID: "switchboard", ClientSecret: "s",
			Scopes: []string{"api://fn/.default"}, Params: map[string]string{"audience": "fn"}}
	}
	if err := good().validate(); err != nil {
		t.Fatalf("good setting: %v", err)
	}
	if err := (*oauth2Input)(nil).validate(); err != nil {
		t.Fatalf("no setting: %v", err)
	}
	tests := []struct {
		name string
		edit func(*oauth2Input)
		want string
	}{
		{"ftp token URL", func(in *oauth2Input) { in.TokenURL = "ftp://idp/token" }, "oauth2.tokenURL"},
		{"credentials in URL", func(in *oauth2Input) { in.TokenURL = "https://u:p@idp/token" }, "without credentials"},
		{"no client id", func(in *oauth2Input) { in.ClientID = "" }, "oauth2.clientID"},
		{"control characters", func(in *oauth2Input) { in.ClientID = "a\nb" }, "oauth2.clientID"},
		{"masked secret", func(in *oauth2Input) { in.ClientSecret = maskMark }, "masked"},
		{"scope with a space", func(in *oauth2Input) { in.Scopes = []string{"a b"} }, "oauth2.scopes"},
		{"reserved param", func(in *oauth2Input) { in.Params = map[string]string{"client_secret": "x"} }, "cannot be set"},
		{"bad param name", func(in *oauth2Input) { in.Params = map[string]string{"a b": "x"} }, "cannot be set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := good()
			tc.edit(in)
			err := in.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
