package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// fastTransport sends the dispatcher's own webhook requests with fasthttp,
// which writes a request and reads its reply on the calling goroutine.
// net/http's transport hands every call to a connection's write goroutine
// and back from its read goroutine, four goroutine switches per call and,
// on a two-core machine, futex wake-ups for each: in the round-trip
// profile its writeLoop, readLoop and roundTrip were 43% of the gateway's
// CPU, and a bare client measured 50–59 µs per call with net/http against
// 27 µs with fasthttp (docs/benchmarks.md, "fasthttp for webhooks").
//
// It sends the webhookRequests post and postAzure build, as net/http's
// client does through webhookRequest.sendWith, so signing, tracing, OAuth
// and the reading of replies are the same for either client. fasthttp
// knows no contexts: callTransport ends a call whose caller leaves. It
// knows no proxies either: with HTTP_PROXY or HTTPS_PROXY set, the
// dispatcher keeps net/http's transport (useProxy).
type fastTransport struct {
	c *fasthttp.Client
}

// newFastTransport dials through addresses' policy (resolving the host
// itself, as net/http's dialer does) and verifies HTTPS upstreams as
// tlsCfg says. Replies longer than maxReply fail with *replyTooLargeError.
func newFastTransport(addresses *AddressPolicy, tlsCfg UpstreamTLS, maxReply int64) *fastTransport {
	dial := addresses.DialContext(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
	hosts := make(map[string]*tls.Config, len(tlsCfg.Hosts))
	for h, c := range tlsCfg.Hosts {
		hosts[strings.ToLower(h)] = c
	}
	c := &fasthttp.Client{
		Transport: callTransport{},
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c, err := dial(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return checkIdle(c), nil
		},
		// A POST is sent again only when the upstream had closed the
		// connection while idle, before any of the request was written: it
		// cannot have run the handler. Any other failure may have.
		RetryIfErr: func(_ *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
			return false, errors.Is(err, errIdleConnClosed)
		},
		// After a quiet spell every pooled connection may be closed, more
		// than fasthttp's default of 5 attempts. Only those are retried,
		// and a fresh connection is never checked, so a call makes at most
		// one attempt per idle connection, plus one.
		MaxIdemponentCallAttempts: math.MaxInt32,
		// Upstreams are few hosts taking many concurrent calls. net/http
		// set no bound on connections per host; neither does this one (a
		// full pool would fail calls at once, against the upstream).
		MaxConnsPerHost:     math.MaxInt32,
		MaxIdleConnDuration: 90 * time.Second, // net/http's IdleConnTimeout
		// The URL is sent as registered and expanded: percent-encoded
		// path segments stay encoded.
		DisablePathNormalizing:   true,
		NoDefaultUserAgentHeader: true,
		// A reply past the limit fails as soon as its length is known.
		MaxResponseBodySize: int(min(maxReply, math.MaxInt32)),
		// fasthttp reads a reply's status line and headers within one
		// buffer of this size, taken from a pool for each call; its default
		// of 4 KiB would refuse replies net/http reads.
		ReadBufferSize: maxReplyHeaderBytes,
		ConfigureClient: func(hc *fasthttp.HostClient) error {
			host, _, err := net.SplitHostPort(hc.Addr)
			if err != nil {
				host = hc.Addr
			}
			if c, ok := hosts[strings.ToLower(host)]; ok {
				hc.TLSConfig = c.Clone()
			}
			return nil
		},
	}
	if tlsCfg.Default != nil {
		c.TLSConfig = tlsCfg.Default.Clone()
	}
	return &fastTransport{c: c}
}

// maxReplyHeaderBytes bounds the status line and headers of an upstream's
// reply, for both clients: Node's HTTP server, a common upstream, sends at
// most 16 KiB of headers.
const maxReplyHeaderBytes = 16 << 10

// errReplyHeadersTooLarge says an upstream's reply headers passed
// maxReplyHeaderBytes.
var errReplyHeadersTooLarge = errors.New("reply headers too large")

// replyTooLargeError says an upstream answered Status with a reply past
// MaxReplySize.
type replyTooLargeError struct{ Status int }

func (e *replyTooLargeError) Error() string {
	return fmt.Sprintf("reply to status %d too large", e.Status)
}

// do sends w and returns the whole reply in memory.
func (f *fastTransport) do(w webhookRequest) (webhookReply, error) {
	if err := w.ctx.Err(); err != nil {
		return webhookReply{}, err
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	// The URL as expanded: the template was parsed at registration and
	// Expand escaped the values, so it needs no second parse here.
	req.SetRequestURI(w.url)
	req.Header.SetMethod(http.MethodPost)
	// Keys are canonical already: fasthttp need not normalise them again.
	req.Header.DisableNormalizing()
	for _, f := range w.header {
		req.Header.Add(f.key, f.value)
	}
	req.SetBodyRaw(w.body) // read only while the call runs
	resp := fasthttp.AcquireResponse()
	kept := false // the reply's body stays in resp until webhookReply.release
	defer func() {
		if !kept {
			fasthttp.ReleaseResponse(resp)
		}
	}()
	// A reply without Content-Type has none: fasthttp would make it
	// text/plain, and the error for a JSON body would name a type the
	// upstream never sent.
	resp.Header.SetNoDefaultContentType(true)
	call := callPool.Get().(*callBounds)
	*call = callBounds{ctx: w.ctx, deadline: w.deadline}
	defer func() { *call = callBounds{}; callPool.Put(call) }()
	req.SetUserValue(callBoundsKey{}, call) // for callTransport; Reset drops it
	if err := f.c.DoDeadline(req, resp, w.deadline); err != nil {
		switch {
		case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrTLSHandshakeTimeout):
			// The context's deadline is this deadline: name it so, whether
			// or not the context's own timer has fired yet.
			return webhookReply{}, fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			return webhookReply{}, &replyTooLargeError{Status: resp.StatusCode()}
		case errors.As(err, new(*fasthttp.ErrSmallBuffer)):
			return webhookReply{}, errReplyHeadersTooLarge
		}
		return webhookReply{}, err
	}
	kept = true
	return webhookReply{
		status:      resp.StatusCode(),
		contentType: string(resp.Header.ContentType()),
		location:    peekString(&resp.Header, "Location"),
		retryAfter:  peekString(&resp.Header, "Retry-After"),
		body:        resp.Body(),
		held:        resp,
	}, nil
}

// peekString is the value of header k, "" when absent, allocating only
// for one that is present.
func peekString(h *fasthttp.ResponseHeader, k string) string {
	if v := h.Peek(k); len(v) > 0 {
		return string(v)
	}
	return ""
}

// callTransport is the exchange of fasthttp's own transport (write the
// request, read the reply, keep the connection if both sides may) on a
// connection the call's context can interrupt. fasthttp knows no contexts,
// and a call whose caller left (its client disconnected, the gateway is
// closing) would run until the upstream answers or its timeout passes; the
// gateway waits for a departed connection's calls before it sends the
// disconnected event, so that event would wait too. When the context ends,
// the connection's deadline moves to the past: the write or read in
// progress fails at once, and the connection, in an unknown state, is
// closed. A dial in progress is not interrupted; it is bounded by the
// upstream's timeout. Streamed bodies, MaxConnDuration and HEAD requests,
// which fasthttp's transport also handles, are not used here.
type callTransport struct{}

// callBounds is what ends a call: its caller's context and its deadline.
// fastTransport.do hands it to callTransport among the request's user
// values, from a pool: a value boxed there would be an allocation per call.
type callBounds struct {
	ctx      context.Context
	deadline time.Time
}

// callBoundsKey keys a call's *callBounds among its request's user values.
type callBoundsKey struct{}

var callPool = sync.Pool{New: func() any { return new(callBounds) }}

// noStop is the stop of a call whose context cannot end: it never did.
func noStop() bool { return true }

// pastDeadline fails every read and write of a connection at once.
var pastDeadline = time.Unix(1, 0)

// RoundTrip implements fasthttp.RoundTripper. retry is true only for a
// failed write, for which the client's RetryIfErr decides (a connection
// found closed before anything was written).
func (callTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	call, _ := req.UserValue(callBoundsKey{}).(*callBounds)
	if call == nil {
		return false, errors.New("delivery: a fasthttp request not sent by fastTransport.do")
	}
	deadline := call.deadline
	cc, err := hc.AcquireConn(time.Until(deadline), req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	if err := conn.SetDeadline(deadline); err != nil {
		hc.CloseConn(cc)
		return true, err
	}
	stop := noStop
	if call.ctx.Done() != nil { // a context that can end (not the outbox's Background)
		stop = context.AfterFunc(call.ctx, func() { _ = conn.SetDeadline(pastDeadline) })
	}
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		stop()
		hc.CloseConn(cc)
		return true, timeoutAsErrTimeout(err)
	}
	br := hc.AcquireReader(conn)
	err = resp.ReadLimitBody(br, hc.MaxResponseBodySize)
	hc.ReleaseReader(br)
	// stop reports false once the context has ended: the deadline may be
	// in the past now or soon, so the connection cannot be used again. Nor
	// can one the upstream switched to another protocol.
	if !stop() || err != nil || req.ConnectionClose() || resp.ConnectionClose() || resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
		hc.CloseConn(cc)
		return false, timeoutAsErrTimeout(err)
	}
	hc.ReleaseConn(cc)
	return false, nil
}

// timeoutAsErrTimeout is err, or fasthttp.ErrTimeout for a connection's
// deadline passing, as fasthttp's own transport reports it.
func timeoutAsErrTimeout(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fasthttp.ErrTimeout
	}
	return err
}

// useProxy reports whether the environment names an HTTP proxy, which
// only net/http's transport honours.
func useProxy() bool {
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"} {
		if os.Getenv(k) != "" {
			return true
		}
	}
	return false
}
