package delivery

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/input"
	"github.com/switchboard-gw/switchboard/upstream"
)

// Target is one registered upstream as the dispatcher uses it.
type Target struct {
	Hub         string
	Name        string
	URLTemplate string
	Filter      Filter
	// Azure, when set, makes this an upstream of the Azure SignalR profile
	// (ProfileAzure): its Rules select events instead of Filter, and its
	// requests are Azure's.
	Azure *AzureUpstream
	// Timeout bounds one call. Zero means 10 s.
	Timeout time.Duration
	// Secrets sign every request; each yields one signature entry.
	Secrets []string
	// keys are Secrets decoded by SetTargets, or keysErr says why they
	// could not be.
	keys    *upstream.Secrets
	keysErr error
	// OAuth2, when set, adds a client-credentials bearer token to every
	// request (see ClientCredentials).
	OAuth2 *ClientCredentials
	// Disabled upstreams (they answered 410 Gone) get no requests:
	// blocking events fail at once and notifications wait in the outbox.
	Disabled       bool
	DisabledReason string
}

// DefaultTimeout bounds an upstream call when the upstream sets none.
const DefaultTimeout = 10 * time.Second

// ErrBadTemplate and ErrBadFilter are wrapped by registration errors.
var (
	ErrBadTemplate = errors.New("delivery: bad URL template")
	ErrBadFilter   = errors.New("delivery: bad event filter")
)

// ErrRefused matches, under errors.Is, a delivery the gateway would not
// make because the event's own values (the caller's input) cannot become a
// safe request: a URL that would leave the template's path, or headers over
// the size limit. It is the caller's error: nothing is sent, the upstream's
// circuit breaker does not count it, and a notification is not retried.
var ErrRefused = errors.New("delivery: request refused")

// ValidateTemplate checks that tpl uses only the known placeholders, none
// of them in the scheme or host except {hub}, and expands to an absolute
// http or https URL.
func ValidateTemplate(tpl string) error {
	if tpl == "" {
		return fmt.Errorf("%w: it is empty", ErrBadTemplate)
	}
	if err := authorityPlaceholders(tpl); err != nil {
		return err
	}
	rest := tpl
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return fmt.Errorf("%w: %q has an unclosed '{'", ErrBadTemplate, tpl)
		}
		switch name := rest[open+1 : open+end]; name {
		case "hub", "category", "event":
		default:
			return fmt.Errorf("%w: unknown placeholder {%s}; use {hub}, {category} or {event}", ErrBadTemplate, name)
		}
		rest = rest[open+end+1:]
	}
	u, err := url.Parse(Expand(tpl, "hub", upstream.CategoryMessages, "event"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadTemplate, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %q must start with http:// or https://", ErrBadTemplate, tpl)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: %q has no host", ErrBadTemplate, tpl)
	}
	return nil
}

// authorityPlaceholders refuses {event} and {category} before the path of
// tpl: a client's invocation target must never choose the host a request
// goes to. ({hub} may: hub names are the admin's.)
func authorityPlaceholders(tpl string) error {
	rest := tpl
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if strings.Contains(rest, "{event}") || strings.Contains(rest, "{category}") {
		return fmt.Errorf("%w: %q puts {event} or {category} in the host; use them in the path or query only", ErrBadTemplate, tpl)
	}
	return nil
}

// ExpandURL is Expand for a request. It refuses, with an error matching
// ErrRefused, values that would change the shape of the template's path once
// a receiver decodes it: a value may not hold a path separator ('/' or '\':
// Expand escapes them, but a receiver that decodes before it routes splits
// on them) nor make a dot segment ("." or "..", alone or with the
// template's own characters, %2e included), so no value can move a request
// out of the path the template fixes, whether the receiver normalises the
// raw path or the decoded one. A template that puts {event} or {category}
// in the host is refused with ErrBadTemplate.
func ExpandURL(tpl, hub, category, event string) (string, error) {
	got := Expand(tpl, hub, category, event)
	if !strings.Contains(tpl, "{") {
		return got, nil
	}
	if err := authorityPlaceholders(tpl); err != nil {
		return "", err
	}
	// Each path segment of the template that holds a placeholder, decoded
	// as a receiver decodes it: the values are substituted raw (one decode
	// undoes Expand's escaping) and the template's own text unescaped.
	for seg := range strings.SplitSeq(templatePath(tpl), "/") {
		if !strings.Contains(seg, "{") {
			continue // the admin's text alone
		}
		raw := 0 // the segment's length with raw values and undecoded text
		err := eachPart(seg, hub, category, event, func(text string, value bool) error {
			if value && strings.ContainsAny(text, `/\`) {
				return fmt.Errorf("%w: the value %s would add a path separator to the URL", ErrRefused, input.Quote(text))
			}
			raw += len(text)
			return nil
		})
		if err != nil {
			return "", err
		}
		// ".." is at most 6 bytes before decoding ("%2e%2e"): only shorter
		// segments can be dot segments, and only they are decoded.
		if raw > 6 {
			continue
		}
		var decoded strings.Builder
		_ = eachPart(seg, hub, category, event, func(text string, value bool) error {
			if !value {
				text = unescape(text)
			}
			decoded.WriteString(text)
			return nil
		})
		if d := decoded.String(); d == "." || d == ".." {
			return "", fmt.Errorf("%w: a value would make the dot segment %q in the URL %s", ErrRefused, d, input.Quote(got))
		}
	}
	return got, nil
}

// eachPart calls fn with the parts of a template segment in order: the
// template's text (value false; an unknown placeholder is text) and the
// values of {hub}, {category} and {event} (value true). It stops at fn's
// first error.
func eachPart(seg, hub, category, event string, fn func(text string, value bool) error) error {
	rest := seg
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		end := -1
		if open >= 0 {
			end = strings.IndexByte(rest[open:], '}')
		}
		if open < 0 || end < 0 {
			return fn(rest, false)
		}
		if err := fn(rest[:open], false); err != nil {
			return err
		}
		var err error
		switch name := rest[open+1 : open+end]; name {
		case "hub":
			err = fn(hub, true)
		case "category":
			err = fn(category, true)
		case "event":
			err = fn(event, true)
		default:
			err = fn(rest[open:open+end+1], false)
		}
		if err != nil {
			return err
		}
		rest = rest[open+end+1:]
	}
	return nil
}

// templatePath is the path of a URL template: after the scheme and host, up
// to the query or fragment.
func templatePath(tpl string) string {
	rest := tpl
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return ""
	}
	rest = rest[i:]
	if j := strings.IndexAny(rest, "?#"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// Expand substitutes the placeholders of tpl, each value path-escaped, or
// query-escaped after the template's '?': a client's target in {event}
// must stay one query value, not add "&code=…" parameters of its own. It
// runs on every webhook, so it scans the template itself rather than build
// a strings.Replacer per call. Expand checks nothing: requests use
// ExpandURL, which refuses values that would leave the template's path.
func Expand(tpl, hub, category, event string) string {
	if !strings.Contains(tpl, "{") {
		return tpl
	}
	var sb strings.Builder
	sb.Grow(len(tpl) + len(hub) + len(category) + len(event))
	rest := tpl
	escape := url.PathEscape
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			sb.WriteString(rest)
			return sb.String()
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			sb.WriteString(rest)
			return sb.String()
		}
		sb.WriteString(rest[:open])
		if strings.ContainsAny(rest[:open], "?#") {
			escape = url.QueryEscape // the query (or fragment) has begun
		}
		switch rest[open+1 : open+end] {
		case "hub":
			sb.WriteString(escape(hub))
		case "category":
			sb.WriteString(escape(category))
		case "event":
			sb.WriteString(escape(event))
		default:
			sb.WriteString(rest[open : open+end+1])
		}
		rest = rest[open+end+1:]
	}
}

// Filter says which events an upstream receives. The zero value receives
// every event.
type Filter struct {
	all      bool
	events   map[string]bool // connect, connected, disconnected, message (= every target)
	messages map[string]bool // message targets, lower-cased
}

// ParseFilter parses entries such as "connect", "connected",
// "disconnected", "message" or "message:*" (every invocation) and
// "message:SendMessage" (one target, matched case-insensitively as SignalR
// does). An empty list or "*" means every event.
func ParseFilter(entries []string) (Filter, error) {
	f := Filter{events: map[string]bool{}, messages: map[string]bool{}}
	if len(entries) == 0 {
		f.all = true
	}
	for _, raw := range entries {
		e := strings.TrimSpace(raw)
		name, target, hasTarget := strings.Cut(e, ":")
		switch {
		case e == "*":
			f.all = true
		case name == upstream.EventMessage && (!hasTarget || target == "*"):
			f.events[upstream.EventMessage] = true
		case name == upstream.EventMessage && target != "":
			f.messages[strings.ToLower(target)] = true
		case !hasTarget && (name == upstream.EventConnect || name == upstream.EventConnected || name == upstream.EventDisconnected):
			f.events[name] = true
		default:
			return Filter{}, fmt.Errorf("%w: %q; use connect, connected, disconnected, message:* or message:TARGET", ErrBadFilter, raw)
		}
	}
	return f, nil
}

// Match reports whether event (with target, for message events) passes.
func (f Filter) Match(event, target string) bool {
	if f.all || (f.events == nil && f.messages == nil) {
		return true
	}
	if f.events[event] {
		return true
	}
	return event == upstream.EventMessage && f.messages[strings.ToLower(target)]
}
