package delivery

import (
	"sync"
	"time"
)

// Delivery is one attempt to deliver an event to an upstream, as kept in the
// upstream's delivery log so a function author can see why a call failed
// without reading the gateway's logs.
type Delivery struct {
	Time         time.Time `json:"time"`
	ID           string    `json:"id"` // webhook-id / ce-id
	Event        string    `json:"event"`
	Target       string    `json:"target,omitempty"` // invocation target of a message event
	ConnectionID string    `json:"connectionId"`
	// Status is the HTTP status the upstream answered; 0 when none.
	Status int `json:"status"`
	// LatencyMS is the time from sending to the end of the answer.
	LatencyMS float64 `json:"latencyMs"`
	// Attempt counts from 1; synchronous events have one attempt (two when
	// the first could not connect at all).
	Attempt int `json:"attempt"`
	// Error says why the delivery failed; empty on success.
	Error string `json:"error,omitempty"`
}

// deliveryLog is a fixed-size ring of the latest deliveries. Safe for
// concurrent use.
type deliveryLog struct {
	mu   sync.Mutex // guards the fields below
	ring []Delivery
	next int  // index the next entry goes to
	full bool // the ring has wrapped
}

func newDeliveryLog(n int) *deliveryLog { return &deliveryLog{ring: make([]Delivery, n)} }

func (l *deliveryLog) add(d Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next] = d
	l.next++
	if l.next == len(l.ring) {
		l.next, l.full = 0, true
	}
}

// entries returns the log, newest first.
func (l *deliveryLog) entries() []Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.next
	if l.full {
		n = len(l.ring)
	}
	out := make([]Delivery, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, l.ring[(l.next-i+len(l.ring))%len(l.ring)])
	}
	return out
}
