package negotiate

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ConnectionString is Azure SignalR's connection string format,
// "Endpoint=http://host:port;AccessKey=SECRET;Version=1.0;", plus our
// optional "KeyId=" naming the key (the JWT kid).
type ConnectionString struct {
	Endpoint  string // absolute http(s) URL without trailing slash; a Port= entry is folded in
	AccessKey string // the secret, used as-is (UTF-8 bytes) as the HMAC key
	KeyID     string // optional
	Version   string // "1.0" unless given
}

// ParseConnectionString reads s. Keys are case-insensitive and in any
// order, the trailing ';' is optional, and unknown keys (Azure's
// ClientEndpoint, AuthType, …) are ignored. "Port=" overrides the endpoint's
// port, as the Azure emulator's connection string uses it.
func ParseConnectionString(s string) (ConnectionString, error) {
	fields := map[string]string{}
	for part := range strings.SplitSeq(s, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		// Split at the first '=' only: base64 secrets end in '='.
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return ConnectionString{}, fmt.Errorf("negotiate: connection string: entry %q is not key=value", redactEntry(part))
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := fields[k]; dup {
			return ConnectionString{}, fmt.Errorf("negotiate: connection string: key %q appears twice", k)
		}
		fields[k] = strings.TrimSpace(v)
	}

	var cs ConnectionString
	endpoint := fields["endpoint"]
	if endpoint == "" {
		return cs, errors.New("negotiate: connection string: missing Endpoint")
	}
	cs.AccessKey = fields["accesskey"]
	if cs.AccessKey == "" {
		return cs, errors.New("negotiate: connection string: missing AccessKey")
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return cs, fmt.Errorf("negotiate: connection string: Endpoint %q is not an http(s) URL", endpoint)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return cs, fmt.Errorf("negotiate: connection string: Endpoint %q must not carry user info, query or fragment", endpoint)
	}
	if p, ok := fields["port"]; ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return cs, fmt.Errorf("negotiate: connection string: Port %q is not a port number", p)
		}
		u.Host = net.JoinHostPort(u.Hostname(), p)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	cs.Endpoint = u.String()

	cs.Version = "1.0"
	if v, ok := fields["version"]; ok {
		if !validVersion(v) {
			return cs, fmt.Errorf("negotiate: connection string: Version %q is not supported, want 1.x", v)
		}
		cs.Version = v
	}
	cs.KeyID = fields["keyid"]
	return cs, nil
}

// validVersion accepts what Azure's parser does: "1." then digits, then an
// optional suffix of letters, digits, '.', '_' or '-' (e.g. "1.0-preview").
func validVersion(v string) bool {
	rest, ok := strings.CutPrefix(v, "1.")
	if !ok || rest == "" || rest[0] < '0' || rest[0] > '9' {
		return false
	}
	for _, c := range rest {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// redactEntry keeps a malformed entry out of error messages when it might be
// (part of) a secret: only a short prefix is shown.
func redactEntry(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// String formats c as "Endpoint=…;AccessKey=…;Version=1.0;" with
// "KeyId=…;" appended when set. The version is c.Version, or 1.0 when empty.
// The result contains the secret: do not log it.
func (c ConnectionString) String() string {
	v := c.Version
	if v == "" {
		v = "1.0"
	}
	s := "Endpoint=" + c.Endpoint + ";AccessKey=" + c.AccessKey + ";Version=" + v + ";"
	if c.KeyID != "" {
		s += "KeyId=" + c.KeyID + ";"
	}
	return s
}

// Key returns the access key the connection string holds.
func (c ConnectionString) Key() AccessKey {
	return AccessKey{ID: c.KeyID, Secret: c.AccessKey}
}
