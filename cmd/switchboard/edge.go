package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/pflag"

	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/node"
)

// edgeFlags are the settings that guard the gateway's edges: where
// webhooks may go.
type edgeFlags struct {
	upstreamAllow, upstreamDeny []string
}

func (e *edgeFlags) register(fl *pflag.FlagSet) {
	fl.StringSliceVar(&e.upstreamAllow, "upstream-allow", envList("UPSTREAM_ALLOW"),
		"network (CIDR) or address upstreams may be at, e.g. 169.254.10.0/24 (repeatable); the most specific of the allow, deny and built-in rules decides")
	fl.StringSliceVar(&e.upstreamDeny, "upstream-deny", envList("UPSTREAM_DENY"),
		"network (CIDR) or address upstreams may not be at, e.g. 10.0.0.0/8 (repeatable); link-local and metadata addresses are refused without it")
}

// apply puts the settings into cfg.
func (e *edgeFlags) apply(cfg *node.Config) error {
	var err error
	if cfg.Delivery.Addresses.Allow, err = prefixList("--upstream-allow", e.upstreamAllow); err != nil {
		return err
	}
	if cfg.Delivery.Addresses.Deny, err = prefixList("--upstream-deny", e.upstreamDeny); err != nil {
		return err
	}
	return nil
}

func prefixList(flag string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if strings.TrimSpace(s) == "" {
			continue
		}
		p, err := delivery.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// envList is SWITCHBOARD_<name> split at commas, or nil.
func envList(name string) []string {
	if v := env(name, ""); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}
