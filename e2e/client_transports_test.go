package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/upstream"
)

// TestGoClientOverHTTPTransports runs the Go client over the HTTP
// transports against a real node, as the load tool and other tests use it:
// Long Polling with both protocols, Server-Sent Events with JSON. It
// invokes through an upstream, whose reply broadcasts; the broadcast and a
// REST broadcast reach it and a WebSocket client alike; its Close (the
// DELETE) gives the upstream its disconnected event.
func TestGoClientOverHTTPTransports(t *testing.T) {
	t.Parallel()
	tests := []struct{ transport, protocol, want string }{
		{"longpolling", "json", "LongPolling"},
		{"longpolling", "messagepack", "LongPolling"},
		{"serversentevents", "json", "ServerSentEvents"},
	}
	for _, tt := range tests {
		t.Run(tt.transport+"/"+tt.protocol, func(t *testing.T) {
			t.Parallel()
			g, rec := setup(t)
			rec.setReply(func(ev *upstream.Event) (int, any) {
				if ev.Event != upstream.EventMessage {
					return http.StatusNoContent, nil
				}
				var args []json.RawMessage
				_ = json.Unmarshal(ev.Arguments, &args)
				user, _ := json.Marshal(ev.UserID)
				return http.StatusOK, map[string]any{"result": args[0], "actions": []actions.Action{
					{Action: actions.Broadcast, Target: "said", Arguments: json.RawMessage(`[` + string(args[0]) + `,` + string(user) + `]`)}}}
			})
			wsGot, got := newInbox(), newInbox()
			g.dial("chat", "bob", map[string]func([]json.RawMessage){"said": wsGot.handler()})
			tok := g.token("chat", "alice")
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			c, err := client.Dial(ctx, g.url+"/client/?hub=chat", &client.Options{
				Transport: tt.transport, Protocol: tt.protocol,
				AccessToken: func(context.Context) (string, error) { return tok, nil },
				Handlers:    map[string]func([]json.RawMessage){"said": got.handler()},
			})
			if err != nil {
				t.Fatalf("dial over %s/%s: %v", tt.transport, tt.protocol, err)
			}
			defer c.Close()
			if c.Transport() != tt.want {
				t.Errorf("Transport() = %q, want %q", c.Transport(), tt.want)
			}

			res, err := c.Invoke(ctx, "say", "hi")
			if err != nil || string(res) != `"hi"` {
				t.Fatalf("Invoke(say) = %s, %v; want \"hi\"", res, err)
			}
			ev := rec.waitEvent(isEvent(upstream.EventMessage, c.ConnectionID()))
			if string(ev.Event.Arguments) != `["hi"]` || ev.Event.UserID == nil || *ev.Event.UserID != "alice" {
				t.Errorf("upstream got arguments %s from %v, want [\"hi\"] from alice", ev.Event.Arguments, ev.Event.UserID)
			}
			for name, b := range map[string]*inbox{tt.transport: got, "websockets": wsGot} {
				if a := b.next(t); len(a) != 2 || str(t, a[0]) != "hi" || str(t, a[1]) != "alice" {
					t.Errorf("%s client got %s, want [\"hi\",\"alice\"]", name, a)
				}
			}

			g.restWant(http.MethodPost, "/api/hubs/chat/:send", map[string]any{"target": "said", "arguments": []string{"rest", "api"}}, http.StatusAccepted)
			for name, b := range map[string]*inbox{tt.transport: got, "websockets": wsGot} {
				if a := b.next(t); len(a) != 2 || str(t, a[0]) != "rest" {
					t.Errorf("%s client got %s from the REST broadcast, want [\"rest\",\"api\"]", name, a)
				}
			}

			if err := c.Close(); err != nil || c.Err() != nil {
				t.Errorf("Close = %v, Err = %v; want nil, nil", err, c.Err())
			}
			rec.waitEvent(isEvent(upstream.EventDisconnected, c.ConnectionID()))
		})
	}
}
