package rest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ConnectionInfo is one entry of a connection list.
type ConnectionInfo struct {
	ConnectionID string `json:"connectionId"`
	UserID       string `json:"userId,omitempty"` // "" for anonymous connections
}

// Pages walks a connection list (of a hub, a group or a user) page by page,
// following the gateway's nextLink. The gateway guarantees that one walk
// returns no connection twice and skips none that stayed connected for the
// whole walk. A Pages is not safe for concurrent use.
type Pages struct {
	h     Hub
	path  string     // escaped path of the next page
	query url.Values // query of the next page
	done  bool
}

func (h Hub) pages(path string, pageSize int) *Pages {
	q := url.Values{}
	if pageSize > 0 {
		q.Set("maxpagesize", strconv.Itoa(pageSize))
	}
	return &Pages{h: h, path: path, query: q}
}

// Done reports whether the last page has been returned.
func (p *Pages) Done() bool { return p.done }

// Next fetches the next page. After the last page Done reports true and
// Next returns nil, nil.
func (p *Pages) Next(ctx context.Context) ([]ConnectionInfo, error) {
	if p.done {
		return nil, nil
	}
	var out struct {
		Value    []ConnectionInfo `json:"value"`
		NextLink string           `json:"nextLink"`
	}
	if _, err := p.h.c.do(ctx, http.MethodGet, p.path, p.query, nil, &out); err != nil {
		return nil, err
	}
	if out.NextLink == "" {
		p.done = true
		return out.Value, nil
	}
	if err := p.follow(out.NextLink); err != nil {
		p.done = true
		return out.Value, err
	}
	return out.Value, nil
}

// All walks the remaining pages and returns their entries.
func (p *Pages) All(ctx context.Context) ([]ConnectionInfo, error) {
	var all []ConnectionInfo
	for !p.Done() {
		page, err := p.Next(ctx)
		all = append(all, page...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// follow makes nextLink the next request. Only its path and query are used:
// the request goes to the client's endpoint whatever host the link names, so
// a token is never sent elsewhere.
func (p *Pages) follow(nextLink string) error {
	u, err := url.Parse(nextLink)
	if err != nil {
		return fmt.Errorf("rest: the gateway answered a bad nextLink %q: %w", nextLink, err)
	}
	path := u.EscapedPath()
	// An endpoint behind a path prefix may get links with or without it.
	if ep, err := url.Parse(p.h.c.endpoint); err == nil && ep.Path != "" {
		path = strings.TrimPrefix(path, strings.TrimRight(ep.EscapedPath(), "/"))
	}
	if !strings.HasPrefix(path, "/api/") {
		return fmt.Errorf("rest: the gateway answered a nextLink outside /api/: %q", nextLink)
	}
	p.path, p.query = path, u.Query()
	return nil
}
