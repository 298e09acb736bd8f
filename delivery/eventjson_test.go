package delivery

import (
	"encoding/json"
	"testing"

	"github.com/switchboard-gw/switchboard/upstream"
)

// FuzzAppendEvent holds appendEvent to json.Marshal: wherever it encodes
// an event, the bytes are Marshal's, and it appends nothing where it
// declines.
func FuzzAppendEvent(f *testing.F) {
	f.Add("chat", "n1.abc", "alice", true, "message", "7", true, "sendMessage", `["hello",1732900000000]`, "")
	f.Add("chat", "n1.abc", "", false, "message", "", false, "send", ` [ 1 , {"a" : null} ] `, "")
	f.Add("chat", "n1.abc", "bob", true, "disconnected", "", false, "", "", "connection lost: EOF")
	f.Add("c<h>at", "n1\u2028", "é", true, "message", "\x00", true, "t\"", `["<b>&amp;\u2028"]`, "")
	f.Add("chat", "n1", "u", true, "message", "1", true, "t", `[1,]`, "")
	f.Add("chat", "n1", "u", true, "message", "1", true, "t", "[\"\xff\"]", "")
	f.Fuzz(func(t *testing.T, hub, conn, user string, hasUser bool, event, invocation string, hasInvocation bool, target, args, reason string) {
		ev := &upstream.Event{Hub: hub, ConnectionID: conn, Event: event, Target: target, Reason: reason}
		if hasUser {
			ev.UserID = &user
		}
		if hasInvocation {
			ev.InvocationID = &invocation
		}
		if args != "" {
			ev.Arguments = json.RawMessage(args)
		}
		got, ok := appendEvent([]byte("prefix"), ev)
		if !ok {
			if string(got) != "prefix" {
				t.Fatalf("declined, having appended %q", got[len("prefix"):])
			}
			return
		}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("appendEvent encoded %q; json.Marshal refuses the event: %v", got, err)
		}
		if string(got) != "prefix"+string(want) {
			t.Fatalf("appendEvent: %s\njson.Marshal:  %s", got[len("prefix"):], want)
		}
	})
}

// The events of an invocation and a disconnect take appendEvent's path;
// a connect, with claims and query, takes json.Marshal's.
func TestEncodeEventTakesTheShortPath(t *testing.T) {
	user := "alice"
	for _, tt := range []struct {
		ev   *upstream.Event
		fast bool
	}{
		{messageEvent(), true},
		{&upstream.Event{Hub: "h", ConnectionID: "n1.c", UserID: &user, Event: upstream.EventDisconnected, Reason: "client closed"}, true},
		{&upstream.Event{Hub: "h", ConnectionID: "n1.c", Event: upstream.EventConnect, Claims: map[string]any{"sub": "alice"}, Query: map[string][]string{"a": {"1"}}}, false},
	} {
		if _, ok := appendEvent(nil, tt.ev); ok != tt.fast {
			t.Errorf("%s event: short path %v, want %v", tt.ev.Event, ok, tt.fast)
		}
		got, err := encodeEvent(tt.ev)
		want, _ := json.Marshal(tt.ev)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s event: encodeEvent %s, %v; want %s", tt.ev.Event, got, err, want)
		}
	}
}
