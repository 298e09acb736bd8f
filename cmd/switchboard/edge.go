package main

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/node"
)

// edgeFlags are the settings that guard the gateway's edges: where
// webhooks may go, how long a client may hold the HTTP server, what one
// client or address may open, and the keys that seal secrets at rest.
type edgeFlags struct {
	upstreamAllow, upstreamDeny []string
	http                        node.HTTPTimeouts
	handshakeTimeout            time.Duration
	limits                      httpapi.ClientLimits
	limitsExempt                []string
	secrets                     secretsFlags
}

func (e *edgeFlags) register(fl *pflag.FlagSet) {
	fl.StringSliceVar(&e.upstreamAllow, "upstream-allow", nil,
		"network (CIDR) or address upstreams may be at, e.g. 169.254.10.0/24 (repeatable); the most specific of the allow, deny and built-in rules decides")
	fl.StringSliceVar(&e.upstreamDeny, "upstream-deny", nil,
		"network (CIDR) or address upstreams may not be at, e.g. 10.0.0.0/8 (repeatable); link-local and metadata addresses are refused without it")
	fl.DurationVar(&e.http.Read, "http-read-timeout", 0, "longest time to read a request, body included (default 30s; never applies to WebSockets)")
	fl.DurationVar(&e.http.Write, "http-write-timeout", 0, "longest time to write a response (default 30s; never applies to WebSockets)")
	fl.DurationVar(&e.http.Idle, "http-idle-timeout", 0, "how long an idle keep-alive connection is kept (default 2m)")
	fl.DurationVar(&e.handshakeTimeout, "handshake-timeout", 0, "how long a new WebSocket may take to send its SignalR handshake before it is closed with 1002 (default 15s)")
	l := &e.limits
	fl.IntVar(&l.ConnectionsPerUser, "max-connections-per-user", 0, "open WebSockets one user id may have in one hub on this node (default 5000; -1 no limit)")
	fl.IntVar(&l.ConnectionsPerAddress, "max-connections-per-address", 0, "open WebSockets one source address (IPv4 address, IPv6 /64) may have on this node (default 1000; -1 no limit)")
	fl.Float64Var(&l.NegotiateRate, "negotiate-rate", 0, "negotiate requests per second per source address, after the burst (default 20; -1 no limit)")
	fl.IntVar(&l.NegotiateBurst, "negotiate-burst", 0, "negotiate requests one source address may make at once (default 100)")
	fl.Float64Var(&l.ConnectRate, "connect-rate", 0, "WebSocket upgrades per second per source address, after the burst (default 20; -1 no limit)")
	fl.IntVar(&l.ConnectBurst, "connect-burst", 0, "WebSocket upgrades one source address may make at once (default 100)")
	fl.StringSliceVar(&e.limitsExempt, "limits-exempt", nil,
		"source networks the per-address limits skip (repeatable; default loopback, where a reverse proxy on this host connects from; \"none\" for none)")
	e.secrets.register(fl)
}

// apply puts the settings into cfg.
func (e *edgeFlags) apply(cfg *node.Config) error {
	cfg.HTTP, cfg.HandshakeTimeout = e.http, e.handshakeTimeout
	var err error
	if cfg.Delivery.Addresses.Allow, err = prefixList("--upstream-allow", e.upstreamAllow); err != nil {
		return err
	}
	if cfg.Delivery.Addresses.Deny, err = prefixList("--upstream-deny", e.upstreamDeny); err != nil {
		return err
	}
	if cfg.Secrets, err = e.secrets.keys(); err != nil {
		return err
	}
	cfg.ClientLimits = e.limits
	switch {
	case len(e.limitsExempt) == 1 && e.limitsExempt[0] == "none":
		cfg.ClientLimits.Exempt = []netip.Prefix{}
	case len(e.limitsExempt) > 0:
		if cfg.ClientLimits.Exempt, err = prefixList("--limits-exempt", e.limitsExempt); err != nil {
			return err
		}
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
