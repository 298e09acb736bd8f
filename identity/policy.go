package identity

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-gw/switchboard/input"
)

// Operation is something a grant allows.
type Operation string

// The operations a grant can allow. Each REST route needs one (see
// docs/identity.md for the table); admin covers the whole admin API.
const (
	// OpSend: the :send routes and the send actions of :actions.
	OpSend Operation = "send"
	// OpGroups: adding and removing connections and users to and from
	// groups, and the group actions of :actions.
	OpGroups Operation = "groups"
	// OpClose: closing connections, and closeConnection in :actions.
	OpClose Operation = "close"
	// OpRead: existence checks and connection listings.
	OpRead Operation = "read"
	// OpGenerateToken: minting client tokens with :generateToken.
	OpGenerateToken Operation = "generateToken"
	// OpAdmin: the admin API (/admin/…). Only a grant for every hub ("*")
	// may hold it, since the admin API changes every hub.
	OpAdmin Operation = "admin"
)

// Operations lists every operation, in the order the docs give them.
var Operations = []Operation{OpSend, OpGroups, OpClose, OpRead, OpGenerateToken, OpAdmin}

// AllHubs in a grant's hubs matches every hub.
const AllHubs = "*"

// DefaultAlgorithms are the signing algorithms accepted when an issuer
// lists none.
var DefaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// Policy is the set of trusted issuers. The zero Policy trusts none.
type Policy struct {
	Issuers []Issuer `yaml:"issuers" json:"issuers"`
}

// Issuer is one trusted OpenID Connect issuer.
type Issuer struct {
	// Issuer is the iss its tokens carry, exactly, and the base of its
	// discovery document (Issuer + "/.well-known/openid-configuration").
	// It must be https, or http on a loopback address (tests, a sidecar).
	Issuer string `yaml:"issuer" json:"issuer"`
	// JWKSURL, when set, is where the keys are fetched from and discovery
	// is skipped (for issuers whose discovery document needs credentials,
	// such as some Kubernetes API servers).
	JWKSURL string `yaml:"jwksURL" json:"jwksURL"`
	// Audiences: a token must carry one of them in aud. Required: a token
	// minted for another service must not be accepted here.
	Audiences []string `yaml:"audiences" json:"audiences"`
	// Algorithms accepted; empty means DefaultAlgorithms (RS256, ES256,
	// EdDSA). HS256 is never accepted: its key would be a shared secret.
	Algorithms []string `yaml:"algorithms" json:"algorithms"`
	// Grants map tokens to permissions; a token that matches none is
	// authenticated but may do nothing (403).
	Grants []Grant `yaml:"grants" json:"grants"`
}

// Grant gives the tokens it matches some operations on some hubs. A token
// matches when its sub equals Subject (if set) and each of Claims is in the
// token: a string claim equal to the value, or a list of strings holding
// it. At least one of Subject and Claims must be set.
type Grant struct {
	Subject string            `yaml:"subject" json:"subject"`
	Claims  map[string]string `yaml:"claims" json:"claims"`
	// Hubs the grant covers, by exact name; "*" covers every hub.
	Hubs       []string    `yaml:"hubs" json:"hubs"`
	Operations []Operation `yaml:"operations" json:"operations"`
}

// Limits on a policy, so a typo cannot make every request slow.
const (
	maxIssuers  = 32
	maxGrants   = 256
	maxListSize = 64
)

// LoadPolicy reads a policy file: YAML, or JSON (which YAML reads too).
// Unknown keys are errors, so a misspelt key does not silently grant or
// withhold anything.
func LoadPolicy(path string) (Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("identity: read policy: %w", err)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return Policy{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy is LoadPolicy for a policy in memory.
func ParsePolicy(data []byte) (Policy, error) {
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("identity: parse policy: %w", err)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Validate checks the whole policy and fills in the default algorithms.
// The error names the first problem by its place in the file.
func (p *Policy) Validate() error {
	if len(p.Issuers) > maxIssuers {
		return fmt.Errorf("identity: %d issuers; at most %d may be trusted", len(p.Issuers), maxIssuers)
	}
	seen := map[string]bool{}
	for i := range p.Issuers {
		is := &p.Issuers[i]
		where := fmt.Sprintf("issuers[%d]", i)
		if err := is.validate(); err != nil {
			return fmt.Errorf("identity: %s: %w", where, err)
		}
		if seen[is.Issuer] {
			return fmt.Errorf("identity: %s: issuer %s is listed twice; put all its grants under one entry", where, is.Issuer)
		}
		seen[is.Issuer] = true
	}
	return nil
}

func (is *Issuer) validate() error {
	if err := checkURL("issuer", is.Issuer); err != nil {
		return err
	}
	if is.JWKSURL != "" {
		if err := checkURL("jwksURL", is.JWKSURL); err != nil {
			return err
		}
	}
	if len(is.Audiences) == 0 {
		return errors.New("audiences is empty: list the aud values tokens for this gateway carry (a token for another service must not be accepted)")
	}
	if len(is.Audiences) > maxListSize {
		return fmt.Errorf("audiences has %d entries; the limit is %d", len(is.Audiences), maxListSize)
	}
	for _, a := range is.Audiences {
		if a == "" || !input.Text(a) {
			return fmt.Errorf("audiences: %s is not a usable audience", input.Quote(a))
		}
	}
	if len(is.Algorithms) == 0 {
		is.Algorithms = slices.Clone(DefaultAlgorithms)
	}
	for _, alg := range is.Algorithms {
		if !slices.Contains(DefaultAlgorithms, alg) {
			return fmt.Errorf("algorithms: %s is not supported; use RS256, ES256 and/or EdDSA", input.Quote(alg))
		}
	}
	if len(is.Grants) > maxGrants {
		return fmt.Errorf("%d grants; the limit is %d", len(is.Grants), maxGrants)
	}
	for j := range is.Grants {
		if err := is.Grants[j].validate(); err != nil {
			return fmt.Errorf("grants[%d]: %w", j, err)
		}
	}
	return nil
}

// checkURL accepts https URLs, and http ones on loopback only: keys
// fetched in clear from elsewhere could be swapped on the way.
func checkURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s %s is not an absolute URL without query (like https://issuer.example.com)", what, input.Quote(raw))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
		return fmt.Errorf("%s %s: http is allowed on loopback only; use https", what, input.Quote(raw))
	}
	return fmt.Errorf("%s %s must start with https://", what, input.Quote(raw))
}

func (g *Grant) validate() error {
	if g.Subject == "" && len(g.Claims) == 0 {
		return errors.New("set subject or claims (or both): a grant without them would match every token of the issuer")
	}
	if g.Subject != "" && !input.Text(g.Subject) {
		return fmt.Errorf("subject %s is not valid text", input.Quote(g.Subject))
	}
	if len(g.Claims) > maxListSize {
		return fmt.Errorf("claims has %d entries; the limit is %d", len(g.Claims), maxListSize)
	}
	for k, v := range g.Claims {
		if k == "" || !input.Text(k) || !input.Text(v) {
			return fmt.Errorf("claims: %s: %s is not a usable claim", input.Quote(k), input.Quote(v))
		}
	}
	if len(g.Hubs) == 0 {
		return errors.New(`hubs is empty: list the hubs this grant covers, or "*" for every hub`)
	}
	if len(g.Hubs) > maxListSize {
		return fmt.Errorf("hubs has %d entries; the limit is %d", len(g.Hubs), maxListSize)
	}
	for _, h := range g.Hubs {
		if h == AllHubs {
			continue
		}
		if err := input.Hub(h); err != nil {
			return fmt.Errorf("hubs: %w", err)
		}
	}
	if len(g.Operations) == 0 {
		return fmt.Errorf("operations is empty: list some of %s", opList())
	}
	for _, op := range g.Operations {
		if !slices.Contains(Operations, op) {
			return fmt.Errorf("operations: %s is not an operation; use %s", input.Quote(string(op)), opList())
		}
		if op == OpAdmin && !slices.Equal(g.Hubs, []string{AllHubs}) {
			return errors.New(`operation admin covers the whole admin API, which changes every hub: give it in a grant whose hubs is ["*"]`)
		}
	}
	return nil
}

func opList() string {
	names := make([]string, len(Operations))
	for i, op := range Operations {
		names[i] = string(op)
	}
	return strings.Join(names, ", ")
}

// matches reports whether a token with these claims is one the grant is
// for.
func (g *Grant) matches(sub string, claims map[string]any) bool {
	if g.Subject != "" && g.Subject != sub {
		return false
	}
	for k, want := range g.Claims {
		switch v := claims[k].(type) {
		case string:
			if v != want {
				return false
			}
		case []any:
			if !slices.ContainsFunc(v, func(e any) bool { s, ok := e.(string); return ok && s == want }) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (g *Grant) allows(hub string, op Operation) bool {
	return slices.Contains(g.Operations, op) && (slices.Contains(g.Hubs, AllHubs) || slices.Contains(g.Hubs, hub))
}
