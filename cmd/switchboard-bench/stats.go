package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records latencies in microseconds with 32 sub-buckets per power
// of two (at most about 3% error) in fixed atomic counters, so a thousand
// reader goroutines can record without a lock and without memory growing
// with the number of samples.
type histogram struct {
	counts [60 << subBits]atomic.Int64
	n      atomic.Int64
	max    atomic.Int64 // microseconds
}

const subBits = 5

func bucketOf(us uint64) int {
	if us < 1<<subBits {
		return int(us)
	}
	e := bits.Len64(us) - 1 // ≥ subBits
	shift := e - subBits
	top := us >> shift // in [32, 64)
	return (shift+1)<<subBits + int(top-(1<<subBits))
}

// bucketValue is the upper bound of bucket i in microseconds.
func bucketValue(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	top := uint64(1<<subBits + i&(1<<subBits-1))
	return (top+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	us := max(d.Microseconds(), 0)
	h.counts[bucketOf(uint64(us))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// quantile returns the latency below which a fraction q of samples fall.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(int64(bucketValue(i)), h.max.Load())) * time.Microsecond
		}
	}
	return time.Duration(h.max.Load()) * time.Microsecond
}

// result is one run's figures; zero fields do not apply to the workload.
type result struct {
	Workload    string  `json:"workload"`
	Transport   string  `json:"transport"`
	Protocol    string  `json:"protocol"`
	Clients     int     `json:"clients"`
	Senders     int     `json:"senders,omitempty"`
	Users       int     `json:"users,omitempty"`
	Seconds     float64 `json:"seconds"`
	ConnectRate float64 `json:"connectsPerSec,omitempty"`
	RSSBefore   int64   `json:"gatewayRssBeforeKiB,omitempty"`
	RSSAfter    int64   `json:"gatewayRssAfterKiB,omitempty"`
	RSSPerConn  float64 `json:"gatewayRssPerConnKiB,omitempty"`
	Sent        int64   `json:"sent,omitempty"`
	Expected    int64   `json:"expected,omitempty"`
	Delivered   int64   `json:"delivered,omitempty"`
	Lost        int64   `json:"lost"`
	Errors      int64   `json:"errors"`
	Disconnects int64   `json:"disconnects"`
	Rate        float64 `json:"perSec,omitempty"` // deliveries/s, or invocations/s for roundtrip
	P50         float64 `json:"p50ms,omitempty"`
	P99         float64 `json:"p99ms,omitempty"`
	Max         float64 `json:"maxms,omitempty"`
	GatewayCPU  float64 `json:"gatewayCpuCores,omitempty"`
	ToolCPU     float64 `json:"toolCpuCores,omitempty"`
	FirstError  string  `json:"firstError,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *result) latencies(h *histogram) {
	r.P50, r.P99, r.Max = ms(h.quantile(0.50)), ms(h.quantile(0.99)), ms(h.quantile(1))
}

// print writes the human table and then the JSON line.
func (r *result) print(w io.Writer) {
	row := func(name, format string, v ...any) {
		fmt.Fprintf(w, "  %-22s "+format+"\n", append([]any{name}, v...)...)
	}
	fmt.Fprintf(w, "%s over %s/%s: %d clients", r.Workload, r.Transport, r.Protocol, r.Clients)
	if r.Senders > 0 {
		fmt.Fprintf(w, ", %d senders", r.Senders)
	}
	if r.Users > 0 {
		fmt.Fprintf(w, ", %d users", r.Users)
	}
	fmt.Fprintf(w, ", %.1f s\n", r.Seconds)
	if r.ConnectRate > 0 {
		row("connects/s", "%.0f", r.ConnectRate)
	}
	if r.RSSAfter > 0 {
		row("gateway RSS", "%d KiB -> %d KiB", r.RSSBefore, r.RSSAfter)
		row("RSS per connection", "%.1f KiB", r.RSSPerConn)
	}
	if r.Workload != "idle" {
		label := "deliveries/s"
		if r.Workload == "roundtrip" {
			label = "invocations/s"
		}
		row(label, "%.0f", r.Rate)
		row("sent / expected / got", "%d / %d / %d", r.Sent, r.Expected, r.Delivered)
		row("lost", "%d", r.Lost)
		row("latency p50/p99/max", "%.2f / %.2f / %.2f ms", r.P50, r.P99, r.Max)
	}
	row("errors / disconnects", "%d / %d", r.Errors, r.Disconnects)
	if r.GatewayCPU > 0 || r.ToolCPU > 0 {
		row("CPU gateway / tool", "%.2f / %.2f cores", r.GatewayCPU, r.ToolCPU)
	}
	if r.FirstError != "" {
		row("first error", "%s", r.FirstError)
	}
	line, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", line)
}

// errCounter counts errors and keeps the first for the report.
type errCounter struct {
	n     atomic.Int64
	first atomic.Pointer[string]
}

func (e *errCounter) add(err error) {
	e.n.Add(1)
	s := err.Error()
	e.first.CompareAndSwap(nil, &s)
}

func (e *errCounter) fill(r *result) {
	r.Errors = e.n.Load()
	if p := e.first.Load(); p != nil {
		r.FirstError = *p
	}
}
