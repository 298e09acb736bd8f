package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-gw/switchboard/upstream"
)

// ErrRegistrationRefused is wrapped by CheckRegistration's errors.
var ErrRegistrationRefused = errors.New("delivery: registration check failed")

// checkTimeout bounds the registration check when ctx has no deadline.
const checkTimeout = 10 * time.Second

// CheckRegistration runs the CloudEvents webhook abuse-protection handshake
// before an upstream is saved: an OPTIONS request to url carrying
// "WebHook-Request-Origin: origin", which the receiver must answer with a
// 2xx status and "WebHook-Allowed-Origin" equal to origin (compared without
// regard to case) or "*". Header names are matched case-insensitively, as
// HTTP requires. The error names the answer's status and whether the
// header was missing or wrong, nothing else of it. A nil client means one
// that does not follow redirects.
func CheckRegistration(ctx context.Context, client *http.Client, url, origin string) error {
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, checkTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRegistrationRefused, err)
	}
	req.Header.Set("WebHook-Request-Origin", origin)
	req.Header.Set("User-Agent", "Switchboard")
	resp, err := client.Do(req)
	if errors.Is(err, ErrAddressRefused) {
		return fmt.Errorf("%w: OPTIONS %s: %w", ErrRegistrationRefused, url, unwrapURLError(err))
	}
	if why := tlsReason(err); why != "" {
		return fmt.Errorf("%w: OPTIONS %s: the receiver is not trusted: %s", ErrRegistrationRefused, url, why)
	}
	if err != nil {
		return fmt.Errorf("%w: OPTIONS %s got no answer (%s): start the function first so it can answer this check, "+
			"then register it; or, for local development, register with skipValidation "+
			"(switchboard upstream add --skip-validation) and start it later",
			ErrRegistrationRefused, url, noAnswer(err))
	}
	resp.Body.Close()
	allowed := strings.TrimSpace(resp.Header.Get("WebHook-Allowed-Origin"))
	if resp.StatusCode/100 == 2 && (allowed == "*" || strings.EqualFold(allowed, origin)) {
		return nil
	}
	// The answer is described by its status code and the one header the
	// check reads, never by the rest of the answer: the URL may name any
	// service the gateway reaches, and its headers and body are not the
	// admin's to read through this check.
	got := "with no WebHook-Allowed-Origin header"
	if _, present := resp.Header["Webhook-Allowed-Origin"]; present {
		got = fmt.Sprintf("with a WebHook-Allowed-Origin that is neither %q nor \"*\"", origin)
	}
	return fmt.Errorf("%w: OPTIONS %s with WebHook-Request-Origin %q was answered %d %s %s; "+
		"the receiver must answer 200 with WebHook-Allowed-Origin %q or \"*\" (the SDK's upstream.Handler does), "+
		"or register with skipValidation for local development (switchboard upstream add --skip-validation)",
		ErrRegistrationRefused, url, origin, resp.StatusCode, http.StatusText(resp.StatusCode), got, origin)
}

// CheckRegistration runs the registration check (the package function) for
// an upstream of hub with urlTemplate, against the URL its connect events
// would go to, with the dispatcher's origin and client (which follows no
// redirects and dials only what the address policy allows).
func (d *Dispatcher) CheckRegistration(ctx context.Context, hub, urlTemplate string) error {
	url := Expand(urlTemplate, hub, upstream.CategoryConnections, upstream.EventConnect)
	return CheckRegistration(ctx, d.cfg.Client, url, d.cfg.Origin)
}

// noAnswer says in a few words why a request got no answer: the kind of
// failure, not the transport's text, which can quote what a service on the
// gateway's network says about itself (a certificate's names, a proxy's
// error).
func noAnswer(err error) string {
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "host not found"
	case errors.As(err, &dns):
		return "host name lookup failed"
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return "timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &op) && op.Op == "dial":
		return "could not connect"
	}
	return "the connection failed before an answer (TLS or protocol error)"
}
