package negotiate

import "errors"

var (
	// ErrInvalidToken is wrapped by every error Verify returns.
	ErrInvalidToken = errors.New("negotiate: invalid token")
	// ErrExpired is also wrapped when the only fault is that the token's
	// exp has passed, so callers can tell the client to fetch a new one.
	ErrExpired = errors.New("negotiate: token expired")
	// ErrWrongAudience is also wrapped when no aud entry names the
	// endpoint the token was presented to (scheme, host and path), so a
	// caller may try another address of the same endpoint.
	ErrWrongAudience = errors.New("negotiate: token for another endpoint")
	// ErrWrongHub is also wrapped when the token is good for the endpoint
	// (its signature, lifetime and endpoint hold) but names another hub:
	// its bearer is known, and is asking for a hub it has no token for.
	ErrWrongHub = errors.New("negotiate: token for another hub")
	// ErrTokenTooLarge is wrapped when IssueToken would make a token over
	// MaxTokenSize: the caller's user id or claims are too long.
	ErrTokenTooLarge = errors.New("negotiate: token too large")
)

// tokenError carries a message saying exactly what is wrong while matching
// ErrInvalidToken (and ErrExpired when expired) under errors.Is.
type tokenError struct {
	msg           string
	expired       bool
	wrongAudience bool
	wrongHub      bool
}

func (e *tokenError) Error() string { return "negotiate: " + e.msg }

func (e *tokenError) Unwrap() []error {
	switch {
	case e.expired:
		return []error{ErrInvalidToken, ErrExpired}
	case e.wrongAudience:
		return []error{ErrInvalidToken, ErrWrongAudience}
	case e.wrongHub:
		return []error{ErrInvalidToken, ErrWrongHub}
	}
	return []error{ErrInvalidToken}
}

func invalid(msg string) error { return &tokenError{msg: msg} }
