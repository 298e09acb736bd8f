package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// oauth2Flags are the `upstream add` flags of an upstream behind OAuth:
// the gateway sends it a client-credentials token (docs/identity.md). The
// client secret never goes on the command line, where ps and shell
// history would show it: it comes from a file or the environment.
type oauth2Flags struct {
	tokenURL, clientID, secretFile string
	scopes, params                 []string
}

func (f *oauth2Flags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.tokenURL, "oauth2-token-url", "", "send a bearer token from this OAuth 2.0 token endpoint (client-credentials grant) with every request")
	fl.StringVar(&f.clientID, "oauth2-client-id", "", "client id for --oauth2-token-url")
	fl.StringVar(&f.secretFile, "oauth2-client-secret-file", "", "file holding the client secret (else SWITCHBOARD_OAUTH2_CLIENT_SECRET)")
	fl.StringSliceVar(&f.scopes, "oauth2-scope", nil, "scope to ask for (repeatable)")
	fl.StringSliceVar(&f.params, "oauth2-param", nil, "extra token request parameter NAME=VALUE, e.g. audience=api://fn (repeatable)")
}

// apply adds the oauth2 setting to an upstream's body when the flags ask
// for one.
func (f *oauth2Flags) apply(in map[string]any) error {
	if f.tokenURL == "" {
		if f.clientID != "" || f.secretFile != "" || len(f.scopes) > 0 || len(f.params) > 0 {
			return fmt.Errorf("the --oauth2-… flags need --oauth2-token-url")
		}
		return nil
	}
	secret := env("OAUTH2_CLIENT_SECRET", "")
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return fmt.Errorf("--oauth2-client-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return fmt.Errorf("--oauth2-token-url needs the client secret: give --oauth2-client-secret-file or SWITCHBOARD_OAUTH2_CLIENT_SECRET")
	}
	params := map[string]string{}
	for _, p := range f.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return fmt.Errorf("--oauth2-param %q: write NAME=VALUE", p)
		}
		params[k] = v
	}
	in["oauth2"] = map[string]any{"tokenURL": f.tokenURL, "clientID": f.clientID, "clientSecret": secret,
		"scopes": f.scopes, "params": params}
	return nil
}
