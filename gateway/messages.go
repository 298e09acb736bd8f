package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/upstream"
)

// errStop ends the read loop after the client's own Close message.
var errStop = errors.New("stop reading")

// handleFrame processes one frame from the client. It reports false when the
// connection is closing and the read loop should stop.
func (c *Conn) handleFrame(ctx context.Context, data []byte, binary bool) bool {
	if binary != c.codec.Binary() {
		got, want := "binary", "text"
		if c.codec.Binary() {
			got, want = want, got
		}
		c.protocolError(CloseUnsupportedData, fmt.Sprintf("%s frames are not supported by the %s protocol; send %s frames", got, c.codec.Name(), want))
		return false
	}
	err := c.codec.Split(data, func(raw []byte) error {
		msg, err := c.codec.Parse(raw)
		if err != nil {
			return err
		}
		return c.handleMessage(ctx, &msg)
	})
	switch {
	case err == nil:
		return true
	case errors.Is(err, errStop):
		return false
	default:
		c.protocolError(CloseProtocolError, "invalid message: "+err.Error())
		return false
	}
}

// protocolError ends the connection with a SignalR Close message saying what
// the client did wrong. The client is not invited to reconnect: it would do
// the same again.
func (c *Conn) protocolError(code int, text string) {
	// Its "connection closed" line gives the reason, at info.
	c.g.log.Debug("closing connection on protocol error", "hub", c.hub.name, "conn", c.id, "err", text)
	c.closeWith(code, text, c.codec.AppendClose(nil, text, false))
}

func (c *Conn) handleMessage(ctx context.Context, m *protocol.Message) error {
	if c.rs != nil {
		switch {
		case trackable(m.Type) && !c.receivedTrackable():
			return nil // replayed after a resume, and processed already
		case m.Type == protocol.TypeAck:
			c.acknowledged(m.SequenceID)
		case m.Type == protocol.TypeSequence:
			// The client replays from here: count its messages anew,
			// dropping those processed already.
			c.rs.inSeq = m.SequenceID - 1
		}
	}
	if m.Type == protocol.TypeInvocation {
		c.received.Add(1) // the hub counts them in receiveInvocation
	}
	switch m.Type {
	case protocol.TypeInvocation:
		c.receiveInvocation(ctx, m)
	case protocol.TypeStreamInvocation:
		c.replyCompletion(m.InvocationID, nil, "streaming invocations are not supported; use invoke or send")
	case protocol.TypeClose:
		c.closeWith(CloseNormal, ReasonClientClosed, nil)
		return errStop
	}
	// Pings only refresh lastRead. Completions (client results), stream items,
	// cancels, acks and sequences have no meaning without server-side hub
	// methods or stateful reconnect, so they are ignored, as are unknown types.
	return nil
}

// RunReply carries out the actions of an upstream's reply to ev, in order,
// on behalf of ev's connection: actions that default to the caller
// (addToGroup, removeFromGroup and closeConnection without a connectionId)
// get its id. It is the one way replies reach the gateway, for invocations
// and for notifications alike; a notification's reply may come after a
// restart, when the connection is long gone, so the caller is the event's
// connection id, not a live connection. The actions were validated where the
// reply entered (upstream.ParseReply). Every action runs even if an earlier
// one failed; the failures are logged and returned together, each naming its
// index (each a ClientError, so an invocation's caller is told which action
// failed but not the internals of why). A nil reply has nothing to run.
func (g *Gateway) RunReply(ctx context.Context, ev *upstream.Event, reply *upstream.Reply) error {
	if reply == nil {
		return nil
	}
	var errs []error
	for i := range reply.Actions {
		a := reply.Actions[i]
		switch a.Action {
		case actions.AddToGroup, actions.RemoveFromGroup, actions.CloseConnection:
			if a.ConnectionID == "" {
				a.ConnectionID = ev.ConnectionID
			}
		}
		if err := g.Apply(ctx, ev.Hub, &a); err != nil {
			g.log.Warn("reply action failed", "hub", ev.Hub, "conn", ev.ConnectionID, "event", ev.Event,
				"index", i, "action", a.Action, "err", err)
			errs = append(errs, &actionError{index: i, action: a, err: err})
		}
	}
	return errors.Join(errs...)
}

// event builds the identity part of a webhook event for c. The connect
// and connected events' callers add the decoded claims.
func (c *Conn) event(name string) *upstream.Event {
	ev := &upstream.Event{Hub: c.hub.name, ConnectionID: c.id, Event: name}
	if c.userID != "" {
		u := c.userID
		ev.UserID = &u
	}
	ev.Client = upstream.ClientInfo{Protocol: c.codec.Name(), Query: c.query, Claims: c.claims}
	return ev
}

// readFailed records why the client's side of the socket ended.
func (c *Conn) readFailed(err error) {
	switch {
	case errors.Is(err, ErrClientClosed):
		c.closeWith(CloseNormal, ReasonClientClosed, nil)
	case errors.Is(err, ErrMessageTooLarge):
		c.closeWith(CloseMessageTooBig, "message exceeds the hub's size limit", nil)
	default:
		c.closeWith(CloseInternalError, "connection lost: "+err.Error(), nil)
	}
}

func (c *Conn) disconnectReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended.get().reason
}

// encodeClaims is claims as the connection keeps them: one JSON object,
// nil for none. They came from a token's JSON, so encoding cannot fail;
// if it did, the webhooks would go without claims rather than the client
// without a connection.
func encodeClaims(claims map[string]any) json.RawMessage {
	if len(claims) == 0 {
		return nil
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return nil
	}
	return b
}
