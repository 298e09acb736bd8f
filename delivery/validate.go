package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
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
// HTTP requires. The error says what the receiver answered. A nil client
// means one that does not follow redirects.
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
	if err != nil {
		return fmt.Errorf("%w: OPTIONS %s got no answer (%v): start the function first so it can answer this check, "+
			"then register it; or, for local development, register with skipValidation "+
			"(switchboard upstream add --skip-validation) and start it later",
			ErrRegistrationRefused, url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	allowed := strings.TrimSpace(resp.Header.Get("WebHook-Allowed-Origin"))
	if resp.StatusCode/100 == 2 && (allowed == "*" || strings.EqualFold(allowed, origin)) {
		return nil
	}
	got := "no WebHook-Allowed-Origin header"
	if _, present := resp.Header["Webhook-Allowed-Origin"]; present {
		got = fmt.Sprintf("WebHook-Allowed-Origin %q", allowed)
	}
	return fmt.Errorf("%w: OPTIONS %s with WebHook-Request-Origin %q was answered %s with %s (headers: %s)%s; "+
		"the receiver must answer 200 with WebHook-Allowed-Origin %q or \"*\" (the SDK's upstream.Handler does), "+
		"or register with skipValidation for local development (switchboard upstream add --skip-validation)",
		ErrRegistrationRefused, url, origin, resp.Status, got, headerList(resp.Header), snippet(body), origin)
}

// CheckRegistration runs the registration check (the package function) for
// an upstream of hub with urlTemplate, against the URL its connect events
// would go to, with the dispatcher's origin and a client that follows no
// redirects.
func (d *Dispatcher) CheckRegistration(ctx context.Context, hub, urlTemplate string) error {
	url := Expand(urlTemplate, hub, upstream.CategoryConnections, upstream.EventConnect)
	return CheckRegistration(ctx, nil, url, d.cfg.Origin)
}

// headerList names the answer's headers with their values, sorted, for the
// error message; long values are cut.
func headerList(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		if k == "Date" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := strings.Join(h[k], ", ")
		if len(v) > 80 {
			v = v[:80] + "…"
		}
		parts = append(parts, k+": "+v)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}
