package negotiate

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-gw/switchboard/input"
)

const (
	// MaxTokenSize is the largest token accepted or issued. Azure uses the
	// same bound because browsers put the token in a URL or an HTTP/2 header.
	MaxTokenSize = 4096

	// DefaultLifetime is the token lifetime when none is given (Azure's too).
	DefaultLifetime = time.Hour

	claimUserID = "asrs.s.uid"
	claimNameID = "nameid"
	claimSub    = "sub"
)

// reservedClaims are set by IssueToken itself; letting extra claims replace
// them would let a caller mint a token for another audience or user by
// accident.
var reservedClaims = []string{"aud", "exp", "iat", claimNameID, claimUserID}

// TokenOptions describe a token to issue.
type TokenOptions struct {
	Audience string           // required: the URL the token is for (see ClientURL)
	UserID   string           // optional; written as "nameid" and "asrs.s.uid"
	Lifetime time.Duration    // zero means DefaultLifetime (1 hour)
	Claims   map[string]any   // extra claims; may not set aud, exp, iat, nameid or asrs.s.uid
	Now      func() time.Time // nil means time.Now
}

// IssueToken signs an HS256 JWT with key (header kid = key.ID when set)
// carrying aud, exp and iat plus the user id and extra claims of opts. The
// user id and claims must pass input.UserID and input.Claims (errors match
// input.ErrInvalid), and the token must fit in MaxTokenSize (ErrTokenTooLarge),
// or Verify would refuse it.
func IssueToken(key AccessKey, opts TokenOptions) (string, error) {
	if key.Secret == "" {
		return "", errors.New("negotiate: issue token: access key has no secret")
	}
	if opts.Audience == "" {
		return "", errors.New("negotiate: issue token: audience is required")
	}
	if opts.Lifetime < 0 {
		return "", fmt.Errorf("negotiate: issue token: negative lifetime %s", opts.Lifetime)
	}
	lifetime := opts.Lifetime
	if lifetime == 0 {
		lifetime = DefaultLifetime
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}

	claims := make(jwt.MapClaims, len(opts.Claims)+5)
	for _, name := range reservedClaims {
		if _, ok := opts.Claims[name]; ok {
			return "", fmt.Errorf("negotiate: issue token: claim %q is set by the issuer and cannot be overridden", name)
		}
	}
	for k, v := range opts.Claims {
		claims[k] = v
	}
	t := now()
	claims["aud"] = opts.Audience
	claims["iat"] = t.Unix()
	claims["exp"] = t.Add(lifetime).Unix()
	if opts.UserID != "" {
		if err := input.UserID(opts.UserID); err != nil {
			return "", fmt.Errorf("negotiate: issue token: %w", err)
		}
		claims[claimNameID] = opts.UserID
		claims[claimUserID] = opts.UserID
	}
	if err := input.Claims(claims); err != nil {
		return "", fmt.Errorf("negotiate: issue token: %w", err)
	}

	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if key.ID != "" {
		tok.Header["kid"] = key.ID
	}
	s, err := tok.SignedString([]byte(key.Secret))
	if err != nil {
		return "", fmt.Errorf("negotiate: issue token: %w", err)
	}
	if len(s) > MaxTokenSize {
		return "", fmt.Errorf("negotiate: issue token: %w: it would be %d bytes, over the %d-byte limit; use a shorter user id or fewer or smaller claims", ErrTokenTooLarge, len(s), MaxTokenSize)
	}
	return s, nil
}
