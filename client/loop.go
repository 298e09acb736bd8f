package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/protocol"
)

// This file holds the reader goroutine, the keep-alive and server-timeout
// timers, and the end of a connection.

// received restarts the server timeout and, like the JS client, arms the
// keep-alive ping only when data arrives.
func (c *Conn) received() {
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
// socket, which ends the read loop.
func (c *Conn) fail(cause error) {
	c.setCause(cause)
	_ = c.ws.CloseNow()
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

// finish ends the connection: records cause, closes the socket, stops the
// timers and waits for their callbacks, fails pending invocations and
// closes done. It runs once, on the reader goroutine (or in Dial).
func (c *Conn) finish(cause error) {
	c.setCause(cause)
	_ = c.ws.CloseNow()
	c.mu.Lock()
	c.ended = true
	pending := c.pending
	c.pending = nil
	err := closedError(c.cause)
	c.mu.Unlock()
	c.pingTimer.Stop()
	if c.timeoutTimer != nil {
		c.timeoutTimer.Stop()
	}
	c.timerFns.Wait()
	for _, ch := range pending {
		ch <- completion{err: err}
	}
	close(c.done)
}

// readLoop is the reader goroutine.
func (c *Conn) readLoop() {
	for {
		typ, frame, err := c.readFrame(context.Background())
		if err != nil {
			c.finish(c.readError(err))
			return
		}
		if err := c.handleFrame(typ, frame); err != nil {
			if !errors.Is(err, errStop) {
				c.setCause(err)
				_ = c.ws.Close(websocket.StatusProtocolError, "")
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

// readFrame reads one WebSocket message into the reused read buffer; the
// bytes are valid until the next call.
func (c *Conn) readFrame(ctx context.Context) (websocket.MessageType, []byte, error) {
	typ, r, err := c.ws.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	b := c.rbuf[:0]
	if cap(b) > maxKeptBuffer {
		b = nil
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, nil, err
		}
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
		if !m.AllowReconnect {
			// The JS client answers a final Close with its own.
			_ = c.write(context.Background(), c.frameType, c.closeFrame)
		}
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
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
	var args []json.RawMessage
	// ParseMessage validated the array, so this cannot fail.
	_ = json.Unmarshal(m.Arguments, &args)
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
