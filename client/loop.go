package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/protocol"
)

// This file holds the reader goroutine, the keep-alive and server-timeout
// timers, and the end of a connection.

// received restarts the server timeout and, like the JS client, arms the
// keep-alive ping only when data arrives (Long Polling has neither).
func (c *Conn) received() {
	if c.timeoutTimer == nil {
		return
	}
	c.timeoutTimer.Reset(c.serverTimeout)
	c.kmu.Lock()
	if !c.pingArmed {
		c.pingArmed = true
		c.pingTimer.Reset(max(time.Until(c.nextPing), 0))
	}
	c.kmu.Unlock()
}

// startTimerWork registers a running timer callback; false when the
// connection has ended and the callback must do nothing.
func (c *Conn) startTimerWork() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.timerFns.Add(1)
	return true
}

func (c *Conn) onPingTimer() {
	if !c.startTimerWork() {
		return
	}
	defer c.timerFns.Done()
	c.kmu.Lock()
	armed := c.pingArmed
	c.kmu.Unlock()
	if armed { // not cleared by a send since it was set
		// A failed ping means a broken socket, which the reader reports.
		_ = c.write(context.Background(), c.frameType, c.pingFrame)
	}
}

func (c *Conn) onServerTimeout() {
	if !c.startTimerWork() {
		return
	}
	defer c.timerFns.Done()
	c.fail(ErrServerTimeout)
}

// fail records cause (unless a reason is already known) and drops the
// transport, which ends the read loop.
func (c *Conn) fail(cause error) {
	c.setCause(cause)
	c.tr.abort()
}

// setCause records why the connection ends; the first reason wins and a
// Close by the user leaves none.
func (c *Conn) setCause(cause error) {
	c.mu.Lock()
	if c.cause == nil && !c.closing {
		c.cause = cause
	}
	c.mu.Unlock()
}

// finish ends the connection: records cause, drops the transport, stops
// the timers and waits for their callbacks, fails pending invocations and
// closes done. It runs once, on the reader goroutine (or in Dial).
func (c *Conn) finish(cause error) {
	c.setCause(cause)
	c.tr.abort()
	c.mu.Lock()
	c.ended = true
	pending := c.pending
	c.pending = nil
	err := closedError(c.cause)
	c.mu.Unlock()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.timeoutTimer != nil {
		c.timeoutTimer.Stop()
	}
	c.timerFns.Wait()
	for _, ch := range pending {
		ch <- completion{err: err}
	}
	close(c.done)
}

// readLoop is the reader goroutine. Over Long Polling it is the poll loop.
func (c *Conn) readLoop() {
	for {
		typ, frame, err := c.readFrame(context.Background())
		if errors.Is(err, errEnded) {
			c.finish(nil)
			return
		}
		if err != nil {
			c.finish(c.readError(err))
			return
		}
		if err := c.handleFrame(typ, frame); err != nil {
			if !errors.Is(err, errStop) {
				c.setCause(err)
				_ = c.tr.stop(websocket.StatusProtocolError, c.frameType, nil)
			}
			c.finish(err)
			return
		}
	}
}

// readError describes a failed read.
func (c *Conn) readError(err error) error {
	return fmt.Errorf("client: read: %w", err)
}

// readFrame reads one frame into the reused read buffer; the bytes are
// valid until the next call.
func (c *Conn) readFrame(ctx context.Context) (websocket.MessageType, []byte, error) {
	typ, b, err := c.tr.read(ctx, c.rbuf)
	if err != nil {
		return 0, nil, err
	}
	c.rbuf = b
	c.received()
	return typ, b, nil
}

// handleFrame handles every hub message of one frame.
func (c *Conn) handleFrame(typ websocket.MessageType, frame []byte) error {
	if typ != c.frameType {
		return fmt.Errorf("%w: %s frame on a %s hub protocol connection", ErrProtocol, typ, c.codec.Name())
	}
	if err := c.codec.Split(frame, c.handleFn); err != nil {
		if errors.Is(err, errStop) || errors.Is(err, ErrProtocol) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return nil
}

// handleMessage handles one hub message.
func (c *Conn) handleMessage(msg []byte) error {
	m, err := c.codec.Parse(msg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	switch m.Type {
	case protocol.TypeInvocation:
		c.dispatch(&m)
		if m.HasInvocationID {
			reply, _ := c.codec.AppendCompletion(nil, m.InvocationID, nil, noResultError) // no value: cannot fail
			if err := c.write(context.Background(), c.frameType, reply); err != nil {
				return err
			}
		}
	case protocol.TypeCompletion, protocol.TypeStreamItem:
		c.complete(&m)
	case protocol.TypeClose:
		c.setCause(&CloseError{Message: m.Error, AllowReconnect: m.AllowReconnect})
		var last []byte
		if !m.AllowReconnect {
			last = c.closeFrame // the JS client answers a final Close with its own
		}
		_ = c.tr.stop(websocket.StatusNormalClosure, c.frameType, last)
		return errStop
	}
	// Pings need no answer; stream invocations, cancels, acks, sequences
	// and unknown types are ignored, as by the JS client.
	return nil
}

// dispatch runs the handlers registered for an invocation's target.
func (c *Conn) dispatch(m *protocol.Message) {
	c.mu.Lock()
	fns := c.handlers[strings.ToLower(m.Target)]
	c.mu.Unlock()
	if len(fns) == 0 {
		return
	}
	// The codec validated the array, so it only needs cutting into its
	// elements; at tens of thousands of messages a second a second JSON
	// pass was the load tool's largest cost after its reads.
	args, _ := protocol.SplitArray(m.Arguments)
	for _, fn := range fns {
		fn(args)
	}
}

// complete delivers a Completion (or a stray StreamItem, which fails an
// Invoke like in the JS client) to its pending Invoke, if any.
func (c *Conn) complete(m *protocol.Message) {
	c.mu.Lock()
	ch, ok := c.pending[m.InvocationID]
	delete(c.pending, m.InvocationID)
	c.mu.Unlock()
	if !ok {
		return // unknown or abandoned invocation: dropped, like the JS client
	}
	var r completion
	switch {
	case m.Type == protocol.TypeStreamItem:
		r.err = fmt.Errorf("%w: stream item for non-streaming invocation %s", ErrProtocol, m.InvocationID)
	case m.Error != "":
		r.err = &InvocationError{Message: m.Error}
	default:
		r.result = m.Result
	}
	ch <- r
}
