package gateway

import (
	"context"
	"testing"
	"time"
)

func TestCloseKind(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		reason string
		want   CloseKind
	}{
		{"client", CloseNormal, ReasonClientClosed, CloseKindClient},
		{"timeout", CloseNormal, "timeout: no message from the client for 30s", CloseKindTimeout},
		{"closeConnection", CloseNormal, "kicked by the app", CloseKindServer},
		{"shutdown", CloseGoingAway, ReasonShutdown, CloseKindShutdown},
		{"resume window", CloseGoingAway, "not resumed within 30s", CloseKindResumeTimeout},
		{"protocol", CloseProtocolError, "invalid message", CloseKindProtocol},
		{"binary on json", CloseUnsupportedData, "binary frame", CloseKindProtocol},
		{"rate", ClosePolicyViolation, "too fast", CloseKindPolicy},
		{"too big", CloseMessageTooBig, "message exceeds the hub's size limit", CloseKindTooBig},
		{"lost", CloseInternalError, "connection lost: EOF", CloseKindLost},
		{"slow", CloseTryAgainLater, ReasonSlowConsumer, CloseKindSlowConsumer},
		{"resume buffer", CloseTryAgainLater, ReasonResumeBufferFull, CloseKindResumeBuffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := closeKind(tt.code, tt.reason); got != tt.want {
				t.Errorf("closeKind(%d, %q) = %s, want %s", tt.code, tt.reason, got, tt.want)
			}
		})
	}
}

// TestCoalescingWindowFollowsTraffic: a connection whose messages come
// closer together than WriteCoalesce waits out the window to share writes;
// one whose messages come further apart writes each at once; under
// congestion the window spans about two gaps, within its bounds.
func TestCoalescingWindowFollowsTraffic(t *testing.T) {
	g := New(Config{SweepInterval: -1, Logger: quiet, WriteCoalesce: 10 * time.Millisecond})
	defer g.Shutdown(context.Background())
	c := testConn(g, g.hub("h"), "c1", newDiscard())
	for _, tc := range []struct {
		gap        time.Duration
		congested  bool
		wantWindow time.Duration
	}{
		{gap: 0, wantWindow: 10 * time.Millisecond}, // no traffic seen yet
		{gap: 2 * time.Millisecond, wantWindow: 10 * time.Millisecond},
		{gap: 9 * time.Millisecond, wantWindow: 10 * time.Millisecond},
		{gap: 10 * time.Millisecond, wantWindow: 0},
		{gap: 66 * time.Millisecond, wantWindow: 0},
		{gap: 2 * time.Millisecond, congested: true, wantWindow: 10 * time.Millisecond},
		{gap: 66 * time.Millisecond, congested: true, wantWindow: 132 * time.Millisecond},
		{gap: time.Second, congested: true, wantWindow: 150 * time.Millisecond},
	} {
		c.gap.Store(int64(tc.gap))
		g.congestedUntil.Store(0)
		if tc.congested {
			g.congestedUntil.Store(monoNow() + int64(time.Hour))
		}
		if got := c.window(); got != int64(tc.wantWindow) {
			t.Errorf("gap %s, congested %v: window %s, want %s", tc.gap, tc.congested, time.Duration(got), tc.wantWindow)
		}
	}
}

// TestCongestionIsLatenessNotDelay: a message to many connections starts
// their write loops at once, so the last of them runs late by the time of
// all the writes before it. That is no congestion as long as each
// connection's write runs within two of its message gaps; only a backlog
// of turns later than that widens the windows.
func TestCongestionIsLatenessNotDelay(t *testing.T) {
	g := New(Config{SweepInterval: -1, Logger: quiet, WriteCoalesce: 10 * time.Millisecond})
	defer g.Shutdown(context.Background())
	const gap = int64(20 * time.Millisecond)
	reset := func() {
		g.lateShare.Store(0)
		g.congestedUntil.Store(0)
	}

	// Chat to 1,000 connections at a message every 20 ms, each fan-out's
	// turns running up to 16 ms after it started.
	reset()
	for range 10 {
		for i := range int64(1000) {
			g.noteSchedulingDelay(i*int64(16*time.Microsecond), gap)
		}
	}
	if g.congested() {
		t.Errorf("fan-outs whose turns all ran before the next message: congested")
	}

	// A connection's first messages have no gap yet: no evidence either way.
	reset()
	for range 1000 {
		g.noteSchedulingDelay(int64(time.Second), 0)
	}
	if g.congested() {
		t.Errorf("turns of connections with no gap yet: congested")
	}

	// A backlog: turns two messages late and more.
	reset()
	for range 1000 {
		g.noteSchedulingDelay(5*gap, gap)
	}
	if !g.congested() {
		t.Errorf("turns five gaps late: not congested")
	}

	// A few late turns among many on time are not a backlog.
	reset()
	for i := range 1000 {
		d := int64(0)
		if i%4 == 0 {
			d = 5 * gap
		}
		g.noteSchedulingDelay(d, gap)
	}
	if g.congested() {
		t.Errorf("a quarter of the turns late: congested")
	}
}
