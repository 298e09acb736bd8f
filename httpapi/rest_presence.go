package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/gateway"
)

// Presence paging limits: maxpagesize defaults to 100 and larger values are
// clamped to 200 (Azure's 2024-12-01 list API documents 1..200; clamping
// keeps clients that ask for "as many as possible" working).
const (
	defaultPageSize = 100
	maxPageSize     = 200
)

type presenceMember struct {
	ConnectionID string  `json:"connectionId"`
	UserID       *string `json:"userId"` // null when anonymous
}

type presencePage struct {
	Value    []presenceMember `json:"value"`
	NextLink string           `json:"nextLink,omitempty"`
}

// restList lists the connections of a hub, group or user in Azure's
// 2024-12-01 paged shape. Members are ordered by connection id and the
// continuation token is the last id returned (base64url), so a walk sees no
// connection twice and skips none that stayed connected throughout, however
// many come and go meanwhile (see gateway.Gateway.Connections).
func (s *Server) restList(kind scopeKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		hub, err := s.restHub(c)
		if err != nil {
			return err
		}
		sc, err := restScope(c, kind)
		if err != nil {
			return err
		}
		size, err := queryInt(c, "maxpagesize", defaultPageSize)
		if err != nil {
			return err
		}
		size = min(size, maxPageSize)
		top, err := queryInt(c, "top", 0)
		if err != nil {
			return err
		}
		if top > 0 {
			size = min(size, top)
		}
		var after string
		if tok := c.QueryParam("continuationToken"); tok != "" {
			b, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				return restFail(http.StatusBadRequest, "Error.InvalidParameter",
					"continuationToken is not one this gateway issued; pass the nextLink of the previous page as is")
			}
			after = string(b)
		}
		conns, more, err := s.cfg.Gateway.Connections(c.Request().Context(), hub.Name, sc, after, size)
		if err != nil {
			return err
		}
		page := presencePage{Value: make([]presenceMember, len(conns))}
		for i, ci := range conns {
			page.Value[i].ConnectionID = ci.ConnectionID
			if ci.UserID != "" {
				page.Value[i].UserID = &conns[i].UserID
			}
		}
		if top > 0 && len(conns) >= top {
			more = false
		}
		if more {
			page.NextLink = nextLink(c, conns[len(conns)-1], top-len(conns))
		}
		return c.JSON(http.StatusOK, page)
	}
}

// nextLink is the relative URL of the page after last: the same path and
// query with the continuation token replaced (and top reduced by what this
// page returned).
func nextLink(c echo.Context, last gateway.ConnInfo, topLeft int) string {
	u := *c.Request().URL
	q := u.Query()
	q.Set("continuationToken", base64.RawURLEncoding.EncodeToString([]byte(last.ConnectionID)))
	if q.Has("top") && topLeft > 0 {
		q.Set("top", strconv.Itoa(topLeft))
	}
	return u.EscapedPath() + "?" + q.Encode()
}

// queryInt reads a positive whole-number query parameter, def when absent.
func queryInt(c echo.Context, name string, def int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, restFail(http.StatusBadRequest, "Error.InvalidParameter",
			fmt.Sprintf("%s %q must be a whole number of at least 1", name, v))
	}
	return n, nil
}
