package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/upstream"
)

// dialProtocol connects an anonymous Go client speaking protocol to hub.
func (g *gw) dialProtocol(hub, protocol string, handlers map[string]func([]json.RawMessage)) *client.Conn {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := client.Dial(ctx, g.url+"/client/?hub="+hub, &client.Options{Protocol: protocol, Handlers: handlers})
	if err != nil {
		g.t.Fatalf("dial %s over %s: %v", hub, protocol, err)
	}
	g.t.Cleanup(func() { c.Close() })
	return c
}

// TestMixedProtocolsInOneGroup: JSON and MessagePack clients in one group
// receive the same group send, each in its own protocol; a MessagePack
// client's invocation reaches the upstream as JSON, its binary data as the
// $binary marker, and the result comes back as bytes.
func TestMixedProtocolsInOneGroup(t *testing.T) {
	t.Parallel()
	g := startNode(t)
	g.createHub("mix", true)
	rec := newRecorder(t)
	rec.secret = g.addUpstream("mix", "fn", rec.URL()+"/{event}", "connect", "message:*")
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event == upstream.EventConnect {
			return http.StatusOK, map[string]any{"groups": []string{"room"}}
		}
		var args []json.RawMessage
		_ = json.Unmarshal(ev.Arguments, &args)
		return http.StatusOK, map[string]any{"result": args[0], "actions": []actions.Action{{Action: actions.SendToGroup, Group: "room", Target: "said",
			Arguments: json.RawMessage(`[` + string(args[0]) + `,1.5,"é",null]`)}}}
	})
	got := make(map[string]chan []json.RawMessage)
	conns := make(map[string]*client.Conn)
	for _, p := range []string{"json", "messagepack", "json", "messagepack"} {
		name := p + string(rune('0'+len(conns)))
		ch := make(chan []json.RawMessage, 4)
		got[name] = ch
		conns[name] = g.dialProtocol("mix", p, map[string]func([]json.RawMessage){"said": func(a []json.RawMessage) { ch <- a }})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := conns["messagepack1"].Invoke(ctx, "say", json.RawMessage(`{"$binary":"AQID"}`))
	if err != nil || string(res) != `{"$binary":"AQID"}` {
		t.Fatalf("invoke over MessagePack = %s, %v; want the bytes back", res, err)
	}
	ev := rec.waitEvent(func(r *received) bool { return r.Event.Event == upstream.EventMessage })
	if string(ev.Event.Arguments) != `[{"$binary":"AQID"}]` {
		t.Errorf("upstream got arguments %s, want the $binary marker", ev.Event.Arguments)
	}
	for name, ch := range got {
		var args []json.RawMessage
		select {
		case args = <-ch:
		case <-ctx.Done():
			t.Fatalf("%s got no group send", name)
		}
		// JSON clients read bytes as base64, as ASP.NET Core writes a
		// byte[]; MessagePack clients as bin, which the Go client hands
		// over as the marker.
		want := `"AQID"`
		if name[:4] != "json" {
			want = `{"$binary":"AQID"}`
		}
		if len(args) != 4 || string(args[0]) != want || string(args[1]) != "1.5" || string(args[2]) != `"é"` || string(args[3]) != "null" {
			t.Errorf("%s got %s", name, args)
		}
	}
}

// TestProtocolFrameTypes: a JSON connection takes text frames only and a
// MessagePack one binary frames only; the other kind closes the connection
// with a reason naming the protocol.
func TestProtocolFrameTypes(t *testing.T) {
	t.Parallel()
	g := startNode(t)
	g.createHub("frames", true)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	j := g.dialProtocol("frames", "json", nil)
	_ = j.WriteBinary(ctx, []byte{0x02, 0x91, 0x06})
	<-j.Done()
	if err := j.Err(); err == nil || !containsAll(err.Error(), "json", "text") {
		t.Errorf("JSON client after a binary frame: %v", err)
	}
	m := g.dialProtocol("frames", "messagepack", nil)
	_ = m.WriteText(ctx, []byte("{\"type\":6}\x1e"))
	<-m.Done()
	if err := m.Err(); err == nil || !containsAll(err.Error(), "messagepack", "binary") {
		t.Errorf("MessagePack client after a text frame: %v", err)
	}
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
