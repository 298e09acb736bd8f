package actions

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/input"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	args := json.RawMessage(`[1]`)
	tests := []struct {
		name        string
		a           Action
		callerKnown bool
		want        string // substring of the error; "" means valid
		wantInput   bool   // the error also matches input.ErrInvalid
	}{
		{name: "broadcast", a: Action{Action: Broadcast, Target: "t", Arguments: args, Excluded: []string{"n1.a"}}},
		{name: "send to group", a: Action{Action: SendToGroup, Group: "room 1", Target: "t"}},
		{name: "send to user", a: Action{Action: SendToUser, User: "tenant/alice", Target: "t"}},
		{name: "add caller to group", a: Action{Action: AddToGroup, Group: "g"}, callerKnown: true},
		{name: "close caller", a: Action{Action: CloseConnection, Reason: "bye"}, callerKnown: true},
		{name: "add user with ttl", a: Action{Action: AddUserToGroup, User: "u", Group: "g", TTL: 60}},

		{name: "no target", a: Action{Action: Broadcast}, want: "broadcast: target is required"},
		{name: "dot target", a: Action{Action: Broadcast, Target: ".."}, want: `broadcast: target ".." is not a method name`, wantInput: true},
		{name: "target with newline", a: Action{Action: SendToUser, User: "u", Target: "a\nb"}, want: "control character", wantInput: true},
		{name: "arguments not an array", a: Action{Action: Broadcast, Target: "t", Arguments: json.RawMessage(`{}`)}, want: "arguments must be a JSON array"},
		{name: "bad excluded", a: Action{Action: Broadcast, Target: "t", Excluded: []string{"ok", "a\x00"}}, want: "excluded: connection id", wantInput: true},
		{name: "group too long", a: Action{Action: SendToGroup, Group: strings.Repeat("g", input.MaxGroup+1), Target: "t"}, want: "group name is 1025 bytes long; the limit is 1024", wantInput: true},
		{name: "blank group", a: Action{Action: AddToGroup, Group: " "}, callerKnown: true, want: "only whitespace", wantInput: true},
		{name: "user too long", a: Action{Action: SendToUser, User: strings.Repeat("u", 100<<10), Target: "t"}, want: "user id is 102400 bytes long; the limit is 1024", wantInput: true},
		{name: "user with control", a: Action{Action: AddUserToGroup, User: "u\r\n", Group: "g"}, want: "addUserToGroup: user id", wantInput: true},
		{name: "no user", a: Action{Action: RemoveUserFromGroup, Group: "g"}, want: "user is required"},
		{name: "negative ttl", a: Action{Action: AddUserToGroup, User: "u", Group: "g", TTL: -1}, want: "ttl must not be negative"},
		{name: "connection id with control", a: Action{Action: SendToConnection, ConnectionID: "c\x7f", Target: "t"}, want: "connection id", wantInput: true},
		{name: "no connection without caller", a: Action{Action: RemoveFromGroup, Group: "g"}, want: "connectionId is required"},
		{name: "reason too long", a: Action{Action: CloseConnection, ConnectionID: "c", Reason: strings.Repeat("r", input.MaxReason+1)}, want: "reason is 1025 bytes long", wantInput: true},
		{name: "missing action", a: Action{Target: "t"}, want: `the "action" field is missing`},
		{name: "unknown action quoted short", a: Action{Action: strings.Repeat("x", 5000) + "\n"}, want: `unknown action "xxxx`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.a.Validate(tt.callerKnown)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
			if got := errors.Is(err, input.ErrInvalid); got != tt.wantInput {
				t.Errorf("errors.Is(err, input.ErrInvalid) = %v, want %v", got, tt.wantInput)
			}
			if len(err.Error()) > 300 {
				t.Errorf("message of %d bytes; values must be quoted short", len(err.Error()))
			}
		})
	}
}
