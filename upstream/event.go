package upstream

import (
	"encoding/json"

	"github.com/switchboard-gw/switchboard/actions"
)

// Event names, as they appear in the body's "event" field, in ce-type
// (prefixed "switchboard.") and in {event} of URL templates (for message
// events {event} is the invocation target instead).
const (
	EventConnect      = "connect"
	EventConnected    = "connected"
	EventMessage      = "message"
	EventDisconnected = "disconnected"
)

// Categories substituted for {category} in URL templates.
const (
	CategoryConnections = "connections"
	CategoryMessages    = "messages"
)

// Event is the signed JSON body of a webhook. The identity fields are repeated
// in the body because the signature covers the body and not the ce-* headers.
type Event struct {
	Hub          string  `json:"hub"`
	ConnectionID string  `json:"connectionId"`
	UserID       *string `json:"userId"`
	Event        string  `json:"event"`

	// connect and connected
	Claims map[string]any `json:"claims,omitempty"`
	// connect
	Query        map[string][]string `json:"query,omitempty"`
	Headers      map[string][]string `json:"headers,omitempty"`
	Subprotocols []string            `json:"subprotocols,omitempty"`

	// message. InvocationID is null for a client send (no reply expected).
	InvocationID *string         `json:"invocationId,omitempty"`
	Target       string          `json:"target,omitempty"`
	Arguments    json.RawMessage `json:"arguments,omitempty"`

	// disconnected
	Reason string `json:"reason,omitempty"`

	// Client is what the gateway knows of the connection beyond the body's
	// fields, for webhook formats that carry it (the gateway's Azure
	// SignalR upstream profile). It is never part of the body: handlers
	// built with this package never see it set.
	Client ClientInfo `json:"-"`
}

// ClientInfo describes an event's connection for the gateway's Azure
// SignalR upstream profile; see Event.Client.
type ClientInfo struct {
	// Protocol is the client's hub protocol: "json" or "messagepack".
	Protocol string `json:"protocol,omitempty"`
	// Query is the query string of the client's connect request, with a
	// leading '?', without the connection token and the access token.
	Query string `json:"query,omitempty"`
	// Claims are the claims of the client's token, on every event, as one
	// JSON object. A connection keeps them encoded for its whole life: a
	// few hundred bytes fewer than a decoded map, and only the Azure
	// profile's webhooks read them.
	Claims json.RawMessage `json:"claims,omitempty"`
}

// User returns the user id, or "" for an anonymous connection.
func (e *Event) User() string {
	if e.UserID == nil {
		return ""
	}
	return *e.UserID
}

// Category is the {category} of the event: "messages" for message events,
// "connections" for the rest.
func (e *Event) Category() string {
	if e.Event == EventMessage {
		return CategoryMessages
	}
	return CategoryConnections
}

// Reply is what a handler answers. Which fields count depends on the event:
// connect reads UserID, Groups and Error; message reads Result, Error and
// Actions; connected and disconnected read Actions only.
type Reply struct {
	// UserID, when set on a connect reply, becomes the connection's user id.
	UserID *string `json:"userId,omitempty"`
	// Groups the connection joins when a connect reply accepts it.
	Groups []string `json:"groups,omitempty"`
	// Result is the invocation's return value, sent to the caller in its
	// Completion.
	Result json.RawMessage `json:"result,omitempty"`
	// Error makes the caller's invocation fail with this text (message), or
	// is the reason a connect was rejected.
	Error string `json:"error,omitempty"`
	// Actions run in order after the reply is received.
	Actions []actions.Action `json:"actions,omitempty"`
}
