package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/identity"
)

// Identities authenticates tokens of the OpenID Connect issuers the
// operator trusts (docs/identity.md); *identity.Verifier implements it.
// Errors match identity.ErrUnauthenticated (answered 401) or
// identity.ErrUnavailable (503).
type Identities interface {
	Authenticate(ctx context.Context, token string) (*identity.Principal, error)
}

var _ Identities = (*identity.Verifier)(nil)

// principalKey holds, in the echo context, the *identity.Principal of a
// REST call made with an OIDC token; calls made with an access key have
// none and may do everything.
const principalKey = "switchboard.principal"

// accessKeyToken reports whether token is signed the way access-key JWTs
// are (HS256). Those go to the access-key verifier; any other token to the
// trusted issuers, which never accept HS256 (its key would be a shared
// secret). A token whose header cannot be read goes to the access-key
// verifier, whose errors have said what is malformed since before OIDC.
// A token over the larger limit of the two goes to the trusted issuers,
// whose verifier refuses it by its length before reading anything: the
// header is the sender's, and nobody has been authenticated yet.
func accessKeyToken(token string) bool {
	if len(token) > identity.MaxTokenSize {
		return false
	}
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return true
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return true
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &hdr) != nil {
		return true
	}
	return hdr.Alg == "HS256" || hdr.Alg == ""
}

// restIdentityAuth authenticates a REST call made with an OIDC token and
// checks the permission its route needs on its hub: 401 for a token the
// policy does not trust, 403 for a caller its grants do not allow. The
// :actions batch is checked action by action (authorizeActions).
func (s *Server) restIdentityAuth(c echo.Context, token string, next echo.HandlerFunc) error {
	p, err := s.cfg.Identities.Authenticate(c.Request().Context(), token)
	switch {
	case errors.Is(err, identity.ErrUnavailable):
		s.log.Warn("OIDC issuer unreachable", "err", err)
		return restFail(http.StatusServiceUnavailable, "Error.ServiceUnavailable", trimIdentity(err)+"; retry later")
	case err != nil:
		return restFail(http.StatusUnauthorized, "Error.Unauthorized", trimIdentity(err))
	}
	hub, err := restHubName(c)
	if err != nil {
		return err
	}
	c.Set(principalKey, p)
	op := restOperation(c.Request().Method, c.Path())
	if op == opPerAction {
		return next(c)
	}
	if op == "" || !p.Allows(hub, op) {
		return restForbidden(p, hub, op)
	}
	return next(c)
}

// opPerAction marks the :actions route, whose permissions depend on the
// actions in its body.
const opPerAction identity.Operation = "(per action)"

// restOperation is the operation a REST route needs, from its method and
// route template (echo's c.Path()). "" for a route it does not know: such
// a route is refused to OIDC callers, never allowed by accident
// (TestRESTOperations checks every registered route maps to one).
func restOperation(method, route string) identity.Operation {
	switch {
	case method == http.MethodGet || method == http.MethodHead:
		return identity.OpRead
	case strings.HasSuffix(route, ":generateToken"):
		return identity.OpGenerateToken
	case strings.HasSuffix(route, ":actions"):
		return opPerAction
	case strings.HasSuffix(route, ":closeConnections"):
		return identity.OpClose
	case method == http.MethodDelete && strings.HasSuffix(route, "/connections/:connectionId") && !strings.Contains(route, "/groups/"):
		return identity.OpClose
	case method == http.MethodPost && (strings.HasSuffix(route, ":send") || strings.HasPrefix(route, "/api/v1/")):
		return identity.OpSend
	case (method == http.MethodPut || method == http.MethodDelete) && strings.Contains(route, "/groups"):
		return identity.OpGroups
	}
	return ""
}

// actionOperation is the operation an action of a batch needs.
func actionOperation(name string) identity.Operation {
	switch name {
	case actions.Broadcast, actions.SendToGroup, actions.SendToUser, actions.SendToConnection:
		return identity.OpSend
	case actions.AddToGroup, actions.RemoveFromGroup, actions.AddUserToGroup, actions.RemoveUserFromGroup:
		return identity.OpGroups
	case actions.CloseConnection:
		return identity.OpClose
	}
	return ""
}

// authorizeActions checks, for a batch sent with an OIDC token, that the
// caller may run every action of it on hub; none runs otherwise.
func (s *Server) authorizeActions(c echo.Context, hub string, list []actions.Action) error {
	p, ok := c.Get(principalKey).(*identity.Principal)
	if !ok {
		return nil // an access key may do everything
	}
	for i := range list {
		if op := actionOperation(list[i].Action); op == "" || !p.Allows(hub, op) {
			err := restForbidden(p, hub, op).(*restError)
			err.msg = fmt.Sprintf("action %d (%s): %s; no action of this batch was run", i, list[i].Action, err.msg)
			return err
		}
	}
	return nil
}

func restForbidden(p *identity.Principal, hub string, op identity.Operation) error {
	if op == "" {
		return restFail(http.StatusForbidden, "Error.Forbidden",
			fmt.Sprintf("%s: this operation is open to access-key tokens only", p))
	}
	return restFail(http.StatusForbidden, "Error.Forbidden",
		fmt.Sprintf("%s may not %s on hub %q: no grant of the gateway's OIDC policy allows it", p, op, hub))
}

// adminIdentityAuth authenticates an admin call made with an OIDC token:
// 401 as for REST, 403 unless a grant gives the caller the admin
// operation.
func (s *Server) adminIdentityAuth(c echo.Context, token string, next echo.HandlerFunc) error {
	p, err := s.cfg.Identities.Authenticate(c.Request().Context(), token)
	switch {
	case errors.Is(err, identity.ErrUnavailable):
		s.log.Warn("OIDC issuer unreachable", "err", err)
		return fail(http.StatusServiceUnavailable, trimIdentity(err)+"; retry later")
	case err != nil:
		return fail(http.StatusUnauthorized, trimIdentity(err))
	}
	if !p.Allows(identity.AllHubs, identity.OpAdmin) {
		return fail(http.StatusForbidden, fmt.Sprintf("%s may not use the admin API: no grant of the gateway's OIDC policy gives it the admin operation", p))
	}
	s.log.Info("admin call with an OIDC identity", "issuer", p.Issuer, "subject", p.Subject,
		"method", c.Request().Method, "path", c.Request().URL.Path)
	return next(c)
}

// trimIdentity drops the sentinel's text from an identity error: the
// status already says it.
func trimIdentity(err error) string {
	msg := err.Error()
	for _, s := range []error{identity.ErrUnauthenticated, identity.ErrUnavailable} {
		msg = strings.TrimPrefix(msg, s.Error()+": ")
	}
	return msg
}
