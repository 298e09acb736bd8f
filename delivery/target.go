package delivery

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/upstream"
)

// Target is one registered upstream as the dispatcher uses it.
type Target struct {
	Hub         string
	Name        string
	URLTemplate string
	Filter      Filter
	// Timeout bounds one call. Zero means 10 s.
	Timeout time.Duration
	// Secrets sign every request; each yields one signature entry.
	Secrets []string
	// keys are Secrets decoded by SetTargets, or keysErr says why they
	// could not be.
	keys    *upstream.Secrets
	keysErr error
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

// ValidateTemplate checks that tpl uses only the known placeholders and
// expands to an absolute http or https URL.
func ValidateTemplate(tpl string) error {
	if tpl == "" {
		return fmt.Errorf("%w: it is empty", ErrBadTemplate)
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

// Expand substitutes the placeholders of tpl, each value path-escaped. It
// runs on every webhook, so it scans the template itself rather than build
// a strings.Replacer per call.
func Expand(tpl, hub, category, event string) string {
	if !strings.Contains(tpl, "{") {
		return tpl
	}
	var sb strings.Builder
	sb.Grow(len(tpl) + len(hub) + len(category) + len(event))
	rest := tpl
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
		switch rest[open+1 : open+end] {
		case "hub":
			sb.WriteString(url.PathEscape(hub))
		case "category":
			sb.WriteString(url.PathEscape(category))
		case "event":
			sb.WriteString(url.PathEscape(event))
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
