package gateway

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/switchboard-gw/switchboard/actions"
)

// Limits bound what one connection may ask of the gateway, so that one
// client cannot take what the others need. The zero value works; each field
// says its default.
//
// Invocations (a client's invoke, with an id, and send, without) become
// message events, which wait on an upstream. They run off the connection's
// read loop, so that pings, further messages and a Close are read while an
// upstream is slow: the client timeout measures the client, not the
// upstream.
type Limits struct {
	// MaxInflightInvocations is how many of one connection's invocations
	// may wait on upstreams at once. The others queue and start in arrival
	// order as earlier ones end: with 1, as in ASP.NET Core SignalR
	// (MaximumParallelInvocationsPerClient), a connection's message events
	// reach the upstream one at a time, in the order the client sent
	// them. Zero means 1.
	MaxInflightInvocations int
	// MaxQueuedInvocations is how many more may wait for their turn. One
	// arriving beyond that is refused at once: an invoke gets a completion
	// error, a send is dropped; both are counted. Each queued invocation
	// holds its arguments (at most the hub's message size limit). Zero
	// means 32; negative means none wait.
	MaxQueuedInvocations int
	// InvocationRate is how many invocations per second one connection may
	// make on average, as a token bucket holding InvocationBurst. One over
	// the rate is refused: an invoke gets a completion error, a send is
	// dropped; both are counted. A connection whose refused invocations
	// alone pass the rate (it keeps sending more than twice its allowance)
	// is closed with 1008 and a Close message that does not invite a
	// reconnect. Zero means 200 per second (a client in a closed loop
	// against a fast upstream, as the round-trip benchmark runs, stays
	// under it); negative means no limit.
	InvocationRate float64
	// InvocationBurst is how many invocations a connection may make at
	// once before the rate applies. Zero means the rate's one-second worth
	// (at least 1).
	InvocationBurst int
	// MaxGroupsPerConnection is how many groups one connection may be in,
	// joined as itself or through its user. A join beyond it fails with
	// ErrTooManyGroups (a completion error for the invocation whose reply
	// asked for it, 400 from the REST API) and is counted; the connection
	// stays in the groups it has. Zero means 1000; negative means no
	// limit.
	MaxGroupsPerConnection int
}

func (l Limits) withDefaults() Limits {
	if l.MaxInflightInvocations <= 0 {
		l.MaxInflightInvocations = 1
	}
	switch {
	case l.MaxQueuedInvocations == 0:
		l.MaxQueuedInvocations = 32
	case l.MaxQueuedInvocations < 0:
		l.MaxQueuedInvocations = 0
	}
	if l.InvocationRate == 0 {
		l.InvocationRate = 200
	}
	if l.InvocationRate > 0 && l.InvocationBurst <= 0 {
		l.InvocationBurst = max(1, int(math.Ceil(l.InvocationRate)))
	}
	switch {
	case l.MaxGroupsPerConnection == 0:
		l.MaxGroupsPerConnection = 1000
	case l.MaxGroupsPerConnection < 0:
		l.MaxGroupsPerConnection = math.MaxInt
	}
	return l
}

// LimitStats counts what the per-connection limits refused since the
// gateway started, for /admin/status.
type LimitStats struct {
	// InvocationsRateLimited counts invokes answered with a completion
	// error because their connection passed InvocationRate;
	// SendsRateLimited the sends dropped for it.
	InvocationsRateLimited int64 `json:"invocationsRateLimited"`
	SendsRateLimited       int64 `json:"sendsRateLimited"`
	// RateLimitCloses counts connections closed because they kept sending
	// at more than twice their rate.
	RateLimitCloses int64 `json:"rateLimitCloses"`
	// InvocationsQueueFull counts invokes answered with a completion error
	// because MaxInflightInvocations were running and MaxQueuedInvocations
	// waiting; SendsQueueFull the sends dropped for it.
	InvocationsQueueFull int64 `json:"invocationsQueueFull"`
	SendsQueueFull       int64 `json:"sendsQueueFull"`
	// InvocationsAbandoned counts invocations a closing connection left:
	// running ones, whose webhook calls were cancelled, and queued ones,
	// never sent.
	InvocationsAbandoned int64 `json:"invocationsAbandoned"`
	// GroupJoinsRefused counts joins refused by MaxGroupsPerConnection.
	GroupJoinsRefused int64 `json:"groupJoinsRefused"`
}

// limitCounters are the gateway's LimitStats as they count.
type limitCounters struct {
	invRate, sendRate, rateCloses atomic.Int64
	invQueue, sendQueue           atomic.Int64
	abandoned                     atomic.Int64
	groupsRefused                 atomic.Int64
}

// LimitStats returns what the per-connection limits refused so far.
func (g *Gateway) LimitStats() LimitStats {
	c := &g.limited
	return LimitStats{
		InvocationsRateLimited: c.invRate.Load(),
		SendsRateLimited:       c.sendRate.Load(),
		RateLimitCloses:        c.rateCloses.Load(),
		InvocationsQueueFull:   c.invQueue.Load(),
		SendsQueueFull:         c.sendQueue.Load(),
		InvocationsAbandoned:   c.abandoned.Load(),
		GroupJoinsRefused:      c.groupsRefused.Load(),
	}
}

// ErrTooManyGroups is matched (errors.Is) by the error of a join refused by
// Limits.MaxGroupsPerConnection. That error also matches actions.ErrInvalid,
// so the REST API answers it as a bad request, with its text, whichever node
// of a cluster holds the connection.
var ErrTooManyGroups = errors.New("gateway: too many groups for one connection")

// groupLimitError is a join refused by MaxGroupsPerConnection. Its text is
// safe for the caller: it names only the connection and the limit.
type groupLimitError struct {
	conn  string
	limit int
}

func (e *groupLimitError) Error() string { return "gateway: " + e.ClientMessage() }

func (e *groupLimitError) ClientMessage() string {
	return fmt.Sprintf("connection %q is already in %d groups, the most one connection may join; remove it from one first", e.conn, e.limit)
}

func (e *groupLimitError) Is(target error) bool {
	return target == ErrTooManyGroups || target == actions.ErrInvalid
}
