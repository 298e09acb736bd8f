package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-gw/switchboard/upstream"
)

// AddressPolicy decides which network addresses webhooks may go to, so an
// admin cannot point an upstream at the gateway host's cloud metadata
// service or at internal networks the operator keeps out of reach. It is
// applied twice: when an upstream is registered (its host is resolved and
// every address checked) and on every dial (the name is resolved again and
// only allowed addresses are dialled), since DNS may answer differently
// later.
//
// The rule that decides an address is the most specific network (longest
// prefix) containing it among Allow, Deny and the built-in refusals
// (BuiltinDenied); on a tie, deny wins. An address no rule covers is
// allowed. So "--upstream-allow 169.254.10.0/24" opens one link-local
// range and keeps the rest refused, and "--upstream-deny 0.0.0.0/0
// --upstream-deny ::/0 --upstream-allow 10.1.0.0/16" turns the policy into
// an allow list. Loopback and private networks are allowed unless denied.
//
// The zero value applies the built-in refusals alone. An AddressPolicy is
// read-only once in use.
type AddressPolicy struct {
	// Allow and Deny are networks; an address given without a prefix length
	// is one host (/32, /128).
	Allow, Deny []netip.Prefix
	// Resolver looks host names up, at registration and at dial time. Nil
	// means net.DefaultResolver.
	Resolver Resolver
}

// Resolver looks up a host's addresses; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// BuiltinDenied are the networks refused unless a more specific Allow
// entry opens part of them: link-local addresses, where cloud metadata
// services answer (169.254.169.254, fd00:ec2::254), and the unspecified
// addresses, which reach the gateway's own host.
var BuiltinDenied = []NamedPrefix{
	{netip.MustParsePrefix("169.254.0.0/16"), "IPv4 link-local, where cloud metadata services answer"},
	{netip.MustParsePrefix("fe80::/10"), "IPv6 link-local"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "the AWS IPv6 metadata service"},
	{netip.MustParsePrefix("0.0.0.0/8"), "IPv4 \"this network\", which reaches the gateway's own host"},
	{netip.MustParsePrefix("::/128"), "the IPv6 unspecified address, which reaches the gateway's own host"},
}

// NamedPrefix is a network with the reason it is listed.
type NamedPrefix struct {
	Prefix netip.Prefix
	Why    string
}

// ErrAddressRefused is matched (errors.Is) by the error of a registration
// or a dial the address policy refused. It is the operator's configuration,
// not the upstream's health, that refuses such a dial.
var ErrAddressRefused = errors.New("delivery: upstream address refused by the address policy")

// AddressRefusedError names the refused address and the rule that refused
// it.
type AddressRefusedError struct {
	Addr netip.Addr
	// Rule is the deciding rule as an operator reads it, e.g. "deny
	// 169.254.0.0/16 (built-in: IPv4 link-local, …)".
	Rule string
}

func (e *AddressRefusedError) Error() string {
	return fmt.Sprintf("address %s is refused by the upstream address policy (rule: %s)", e.Addr, e.Rule)
}

func (e *AddressRefusedError) Is(target error) bool { return target == ErrAddressRefused }

// ParsePrefix reads a network as an operator writes it: CIDR ("10.0.0.0/8",
// "fd00::/8") or one address ("10.1.2.3").
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a network such as 10.0.0.0/8 or fd00::/8", s)
		}
		return unmapPrefix(p).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or a network such as 10.0.0.0/8", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapPrefix turns an IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) into
// its IPv4 form, as addresses are unmapped before they are checked.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// Check returns nil if a may be dialled, else an *AddressRefusedError.
func (p *AddressPolicy) Check(a netip.Addr) error {
	a = a.Unmap().WithZone("") // a zoned address matches no prefix
	bits, deny, rule := -1, false, ""
	consider := func(pr netip.Prefix, isDeny bool, why string) {
		if !pr.Contains(a) {
			return
		}
		if pr.Bits() > bits || pr.Bits() == bits && isDeny && !deny {
			bits, deny, rule = pr.Bits(), isDeny, why
		}
	}
	for _, b := range BuiltinDenied {
		consider(b.Prefix, true, fmt.Sprintf("deny %s (built-in: %s; open it with --upstream-allow)", b.Prefix, b.Why))
	}
	for _, pr := range p.Deny {
		consider(pr, true, fmt.Sprintf("deny %s (--upstream-deny)", pr))
	}
	for _, pr := range p.Allow {
		consider(pr, false, "")
	}
	if deny {
		return &AddressRefusedError{Addr: a, Rule: rule}
	}
	return nil
}

func (p *AddressPolicy) resolver() Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// lookupTimeout bounds the registration's lookup of an upstream's host.
const lookupTimeout = 5 * time.Second

// CheckHost checks the addresses of host (a name or a literal address)
// for a registration: a literal address is checked as it is; a name is
// resolved and refused if any address it resolves to is. A name that does
// not resolve now is accepted (the function may not run yet): the check
// at dial time still applies.
func (p *AddressPolicy) CheckHost(ctx context.Context, host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		return p.Check(a)
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.Check(a); err != nil {
			return fmt.Errorf("host %s: %w", host, err)
		}
	}
	return nil
}

// DialContext returns a dial function for an http.Transport that resolves
// the host itself, skips the addresses the policy refuses and dials the
// others in turn. When every address is refused it fails with a *net.OpError
// (Op "dial") wrapping an *AddressRefusedError. d's Control is replaced by
// a check of the address actually dialled, as a second line.
func (p *AddressPolicy) DialContext(d *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	inner := *d
	inner.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("delivery: dialling %q: not an address", address)
		}
		return p.Check(ap.Addr())
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, portText, err := net.SplitHostPort(address)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else {
			lookup := "ip"
			switch network {
			case "tcp4":
				lookup = "ip4"
			case "tcp6":
				lookup = "ip6"
			}
			if addrs, err = p.resolver().LookupNetIP(ctx, lookup, host); err != nil {
				return nil, &net.OpError{Op: "dial", Net: network, Err: err}
			}
		}
		var refused, last error
		for _, a := range addrs {
			if err := p.Check(a); err != nil {
				if refused == nil {
					refused = err
				}
				continue
			}
			conn, err := inner.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), portText))
			if err == nil {
				return conn, nil
			}
			last = err
			if ctx.Err() != nil {
				break
			}
		}
		if last != nil {
			return nil, last
		}
		if refused == nil {
			refused = fmt.Errorf("no address for %s", host)
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("%s: %w", host, refused)}
	}
}

// CheckAddress applies the address policy to an upstream of hub with
// urlTemplate, at the host its connect events would go to. The error says
// which address and rule refused it, for the admin.
func (d *Dispatcher) CheckAddress(ctx context.Context, hub, urlTemplate string) error {
	u, err := url.Parse(Expand(urlTemplate, hub, upstream.CategoryConnections, upstream.EventConnect))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadTemplate, err)
	}
	return d.cfg.Addresses.CheckHost(ctx, u.Hostname())
}
