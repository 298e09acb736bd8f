package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/switchboard-gw/switchboard/identity"
	"github.com/switchboard-gw/switchboard/node"
)

// identityFlags point at the OIDC policy: which issuers' tokens the REST
// and admin APIs accept and what each caller may do (docs/identity.md).
type identityFlags struct {
	oidcPolicy string
}

func (f *identityFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.oidcPolicy, "oidc-policy", "",
		"YAML or JSON file of trusted OpenID Connect issuers and their grants; their tokens then call the REST and admin APIs without an access key (default none: access keys only)")
}

// apply loads the policy into cfg. A policy that does not load stops the
// start: a gateway running without the grants its operator wrote would
// refuse every keyless caller.
func (f *identityFlags) apply(cfg *node.Config) error {
	if f.oidcPolicy == "" {
		return nil
	}
	p, err := identity.LoadPolicy(f.oidcPolicy)
	if err != nil {
		return fmt.Errorf("--oidc-policy: %w", err)
	}
	v, err := identity.NewVerifier(p, identity.Config{})
	if err != nil {
		return fmt.Errorf("--oidc-policy: %w", err)
	}
	cfg.Identities = v
	if cfg.Logger != nil {
		cfg.Logger.Info("trusting OIDC issuers for the REST and admin APIs", "issuers", v.Issuers())
	}
	return nil
}
