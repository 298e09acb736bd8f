package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"

	"github.com/labstack/echo/v4"
)

// HeaderRequestID carries a request's id: taken from the request when it
// is a sensible one, else made here, and always sent back, so a caller
// can find the log lines of its request.
const HeaderRequestID = "X-Request-Id"

// maxRequestID bounds an id taken from a request; longer ones, or ones
// with other characters than maxRequestID allows, are replaced.
const maxRequestID = 64

type requestIDKey struct{}

// requestTag is what requestID keeps of a request: its id, and the value
// slice of the response header that sends it back, in one allocation (the
// id boxed for the context and the header's slice were two more on every
// request, negotiate and connect included). net/http only reads the slice;
// Header.Add would copy it, its capacity being full.
type requestTag struct {
	id     string
	header [1]string
}

// requestID gives every request an id, in its context (see logFor) and in
// the response's X-Request-Id. An id the client sent is kept when it is
// 1 to 64 letters, digits and ._:- (UUIDs, trace ids, a proxy's ids);
// anything else is replaced rather than refused, since the header is only
// for correlating logs and must not put a log line or a request at risk.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		tag := &requestTag{id: r.Header.Get(HeaderRequestID)}
		if !validRequestID(tag.id) {
			tag.id = newRequestID()
		}
		tag.header[0] = tag.id
		c.Response().Header()[HeaderRequestID] = tag.header[:] // the key is canonical
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), requestIDKey{}, tag)))
		return next(c)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '.', b == '_', b == ':', b == '-':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	var h [24]byte
	rand.Read(b[:])
	hex.Encode(h[:], b[:])
	return string(h[:])
}

// logFor is the server's logger with the request id of ctx, if any, so
// every line about a request carries it.
func (s *Server) logFor(ctx context.Context) *slog.Logger {
	if tag, ok := ctx.Value(requestIDKey{}).(*requestTag); ok {
		return s.log.With("request_id", tag.id)
	}
	return s.log
}
