package negotiate

import "errors"

var (
	// ErrInvalidToken is wrapped by every error Verify returns.
	ErrInvalidToken = errors.New("negotiate: invalid token")
	// ErrExpired is also wrapped when the only fault is that the token's
	// exp has passed, so callers can tell the client to fetch a new one.
	ErrExpired = errors.New("negotiate: token expired")
)

// tokenError carries a message saying exactly what is wrong while matching
// ErrInvalidToken (and ErrExpired when expired) under errors.Is.
type tokenError struct {
	msg     string
	expired bool
}

func (e *tokenError) Error() string { return "negotiate: " + e.msg }

func (e *tokenError) Unwrap() []error {
	if e.expired {
		return []error{ErrInvalidToken, ErrExpired}
	}
	return []error{ErrInvalidToken}
}

func invalid(msg string) error { return &tokenError{msg: msg} }
