package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/negotiate"
)

// errNotLoopback refuses targets outside 127.0.0.0/8: the tool is a load
// generator and must never be pointed at someone else's machine.
var errNotLoopback = errors.New("bench: only gateways on 127.0.0.0/8 may be targeted")

// target is a running gateway and the means to drive it.
type target struct {
	base string // http://127.x.x.x:port, no trailing slash
	// clientBases are the gateways clients connect to, in turn (a
	// cluster's nodes); admin and REST calls go to base.
	clientBases []string
	nextClient  atomic.Uint32
	dialed      atomic.Uint32 // clients dialed, for "mixed" protocols
	adminKey    string
	key         *negotiate.AccessKey // signs client and REST tokens; nil: anonymous clients, no REST
	hub         string
	protocol    string // the clients' hub protocol ("" = json; "mixed" alternates)
	transport   string // the clients' transport ("" = websockets)
	users       int    // client i is user bench-user-<i mod users>; 0: no user id

	api     *http.Client // admin and REST calls, kept alive
	clients *http.Client // the clients' requests, spread over source addresses
}

// loopbackBase checks that raw names a loopback gateway and returns its base
// URL with "localhost" replaced by 127.0.0.1.
func loopbackBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("bench: --url %q: want http://127.0.0.1:PORT", raw)
	}
	host, port := u.Hostname(), u.Port()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || ip.To4() == nil || ip.To4()[0] != 127 {
		return "", fmt.Errorf("%w: %q", errNotLoopback, raw)
	}
	if port == "" {
		port = "80"
	}
	return "http://" + net.JoinHostPort(host, port) + u.Path, nil
}

// loopbackDialer dials only 127.0.0.0/8 and spreads connections over
// sources source addresses (127.0.0.1 … 127.0.0.N), each with its own
// ephemeral port range, to pass the ~28k ports one address pair allows.
func loopbackDialer(sources int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var next atomic.Uint32
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); ip == nil || ip.To4() == nil || ip.To4()[0] != 127 {
			return nil, fmt.Errorf("%w: %s", errNotLoopback, addr)
		}
		d := net.Dialer{Timeout: 30 * time.Second}
		if sources > 1 {
			n := next.Add(1) % uint32(sources)
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+n))}
		}
		return d.DialContext(ctx, "tcp4", addr)
	}
}

func newTarget(base, adminKey, connString, hub string, sources int) (*target, error) {
	t := &target{base: base, clientBases: []string{base}, adminKey: adminKey, hub: hub}
	if connString != "" {
		cs, err := negotiate.ParseConnectionString(connString)
		if err != nil {
			return nil, fmt.Errorf("bench: --connection-string: %w", err)
		}
		k := cs.Key()
		t.key = &k
	}
	dial := loopbackDialer(sources)
	t.api = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: loopbackDialer(1), MaxIdleConnsPerHost: 64,
	}}
	t.clients = &http.Client{Transport: &http.Transport{
		DialContext: dial, MaxIdleConnsPerHost: 64, IdleConnTimeout: 5 * time.Second,
	}}
	return t, nil
}

func (t *target) close() {
	t.api.CloseIdleConnections()
	t.clients.CloseIdleConnections()
}

// admin calls the admin API; a status outside ok is an error with the body.
func (t *target) admin(ctx context.Context, method, path string, body any, ok ...int) error {
	if t.adminKey == "" {
		return errors.New("bench: this workload needs the admin API: pass --admin-key (or --spawn)")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.adminKey)
	req.Header.Set("Content-Type", "application/json")
	return t.do(req, ok)
}

func (t *target) do(req *http.Request, ok []int) error {
	resp, err := t.api.Do(req)
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	for _, s := range ok {
		if resp.StatusCode == s {
			return nil
		}
	}
	return fmt.Errorf("bench: %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(data))
}

// ensureHub creates the hub (anonymous clients allowed) unless it exists.
func (t *target) ensureHub(ctx context.Context) error {
	return t.admin(ctx, http.MethodPost, "/admin/hubs",
		map[string]any{"name": t.hub, "allowAnonymous": true}, http.StatusCreated, http.StatusConflict)
}

const upstreamName = "switchboard-bench"

// setUpstream registers (or replaces) the tool's upstream on the hub.
func (t *target) setUpstream(ctx context.Context, u *localUpstream, events []string) error {
	return t.admin(ctx, http.MethodPut, "/admin/hubs/"+url.PathEscape(t.hub)+"/upstreams/"+upstreamName,
		map[string]any{"urlTemplate": u.url + "/{event}", "events": events, "secrets": []string{u.secret}},
		http.StatusOK, http.StatusCreated)
}

// removeUpstream deletes the tool's upstream; a missing one is fine.
func (t *target) removeUpstream(ctx context.Context) error {
	return t.admin(ctx, http.MethodDelete, "/admin/hubs/"+url.PathEscape(t.hub)+"/upstreams/"+upstreamName,
		nil, http.StatusNoContent, http.StatusNotFound)
}

// restToken signs a REST API token for path (aud = the URL without query).
func (t *target) restToken(path string) (string, error) {
	if t.key == nil {
		return "", errors.New("bench: the REST API needs --connection-string (or --spawn) to sign its tokens")
	}
	return negotiate.IssueToken(*t.key, negotiate.TokenOptions{Audience: t.base + path, Lifetime: time.Hour})
}

// setClientBases makes clients connect to each of raws in turn.
func (t *target) setClientBases(raws []string) error {
	bases := make([]string, 0, len(raws))
	for _, raw := range raws {
		b, err := loopbackBase(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("--urls: %w", err)
		}
		bases = append(bases, b)
	}
	if len(bases) > 0 {
		t.clientBases = bases
	}
	return nil
}

// clientBase is the gateway the next client connects to.
func (t *target) clientBase() string {
	return t.clientBases[int(t.nextClient.Add(1)-1)%len(t.clientBases)]
}

// userID is client i's user id: with --users the gateway indexes every
// connection under a user, as an application that signs in its users does.
func (t *target) userID(i int) string {
	if t.users <= 0 {
		return ""
	}
	return "bench-user-" + strconv.Itoa(i%t.users)
}

// dial opens client i's SignalR connection to the hub, on the next client
// base.
func (t *target) dial(ctx context.Context, i int, handlers map[string]func([]json.RawMessage)) (*client.Conn, error) {
	url := negotiate.ClientURL(t.clientBase(), t.hub)
	transport := t.transport
	if transport == "" {
		transport = "websockets" // never a fallback: a run measures one transport
	}
	protocol := t.protocol
	if protocol == "mixed" {
		protocol = []string{"json", "messagepack"}[t.dialed.Add(1)%2]
	}
	opts := &client.Options{HTTPClient: t.clients, Handlers: handlers, Protocol: protocol, Transport: transport}
	switch {
	case t.key != nil:
		tok, err := negotiate.IssueToken(*t.key, negotiate.TokenOptions{Audience: url, UserID: t.userID(i), Lifetime: time.Hour})
		if err != nil {
			return nil, err
		}
		opts.AccessToken = func(context.Context) (string, error) { return tok, nil }
	case t.users > 0:
		return nil, errors.New("bench: --users needs --connection-string (or --spawn) to sign the clients' tokens")
	}
	return client.Dial(ctx, url, opts)
}

// fleet is a set of open client connections.
type fleet struct {
	conns       []*client.Conn
	disconnects atomic.Int64 // connections that ended before closeAll
	closing     atomic.Bool
}

// connect opens n connections, starting at most rate per second with up to
// 128 dials in flight, and returns once all are open or ctx ends. handlers
// is called per connection index.
func (t *target) connect(ctx context.Context, n, rate int, handlers func(i int) map[string]func([]json.RawMessage), errs *errCounter) (*fleet, time.Duration) {
	f := &fleet{conns: make([]*client.Conn, n)}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(n, 128) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, err := t.dial(ctx, i, handlers(i))
				if err != nil {
					errs.add(err)
					continue
				}
				f.conns[i] = c
				go func() {
					<-c.Done()
					if !f.closing.Load() {
						f.disconnects.Add(1)
					}
				}()
			}
		}()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if rate > 0 {
			if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
				time.Sleep(wait)
			}
		}
		select {
		case work <- i:
		case <-ctx.Done():
			i = n
		}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	f.conns = compact(f.conns)
	return f, elapsed
}

func compact(cs []*client.Conn) []*client.Conn {
	out := cs[:0]
	for _, c := range cs {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// closeAll closes every connection, 64 at a time.
func (f *fleet) closeAll() {
	f.closing.Store(true)
	work := make(chan *client.Conn)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				_ = c.Close()
			}
		}()
	}
	for _, c := range f.conns {
		work <- c
	}
	close(work)
	wg.Wait()
}
