package upstream

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/input"
)

func TestReplyBuilders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  *Reply
		want string // the reply's JSON encoding
		// callerRelative actions are valid only when the event has a caller.
		callerRelative bool
	}{
		{name: "broadcast", got: NewReply().Broadcast("newMessage", "alice", "hi"),
			want: `{"actions":[{"action":"broadcast","target":"newMessage","arguments":["alice","hi"]}]}`},
		{name: "broadcast no args", got: NewReply().Broadcast("ping"),
			want: `{"actions":[{"action":"broadcast","target":"ping","arguments":[]}]}`},
		{name: "broadcast except", got: NewReply().BroadcastExcept([]string{"c1"}, "t", 1),
			want: `{"actions":[{"action":"broadcast","target":"t","arguments":[1],"excluded":["c1"]}]}`},
		{name: "send to group", got: NewReply().SendToGroup("room1", "t", map[string]int{"n": 1}),
			want: `{"actions":[{"action":"sendToGroup","target":"t","arguments":[{"n":1}],"group":"room1"}]}`},
		{name: "send to group except", got: NewReply().SendToGroupExcept("room1", []string{"c1", "c2"}, "t"),
			want: `{"actions":[{"action":"sendToGroup","target":"t","arguments":[],"group":"room1","excluded":["c1","c2"]}]}`},
		{name: "send to user", got: NewReply().SendToUser("bob", "t", nil),
			want: `{"actions":[{"action":"sendToUser","target":"t","arguments":[null],"user":"bob"}]}`},
		{name: "send to connection", got: NewReply().SendToConnection("c9", "t", true),
			want: `{"actions":[{"action":"sendToConnection","target":"t","arguments":[true],"connectionId":"c9"}]}`},
		{name: "add caller to group", got: NewReply().AddToGroup("g"), callerRelative: true,
			want: `{"actions":[{"action":"addToGroup","group":"g"}]}`},
		{name: "add connections to group", got: NewReply().AddToGroup("g", "c1", "c2"),
			want: `{"actions":[{"action":"addToGroup","group":"g","connectionId":"c1"},{"action":"addToGroup","group":"g","connectionId":"c2"}]}`},
		{name: "remove caller from group", got: NewReply().RemoveFromGroup("g"), callerRelative: true,
			want: `{"actions":[{"action":"removeFromGroup","group":"g"}]}`},
		{name: "remove connection from group", got: NewReply().RemoveFromGroup("g", "c1"),
			want: `{"actions":[{"action":"removeFromGroup","group":"g","connectionId":"c1"}]}`},
		{name: "add user to group", got: NewReply().AddUserToGroup("bob", "g", 0),
			want: `{"actions":[{"action":"addUserToGroup","group":"g","user":"bob"}]}`},
		{name: "add user to group with ttl", got: NewReply().AddUserToGroup("bob", "g", 90*time.Second),
			want: `{"actions":[{"action":"addUserToGroup","group":"g","user":"bob","ttl":90}]}`},
		{name: "ttl rounds up", got: NewReply().AddUserToGroup("bob", "g", 1500*time.Millisecond),
			want: `{"actions":[{"action":"addUserToGroup","group":"g","user":"bob","ttl":2}]}`},
		{name: "remove user from group", got: NewReply().RemoveUserFromGroup("bob", "g"),
			want: `{"actions":[{"action":"removeUserFromGroup","group":"g","user":"bob"}]}`},
		{name: "close caller", got: NewReply().CloseConnection("bye"), callerRelative: true,
			want: `{"actions":[{"action":"closeConnection","reason":"bye"}]}`},
		{name: "close connections", got: NewReply().CloseConnection("bye", "c1"),
			want: `{"actions":[{"action":"closeConnection","connectionId":"c1","reason":"bye"}]}`},
		{name: "connect fields", got: NewReply().SetUser("bob").JoinGroups("a").JoinGroups("b"),
			want: `{"userId":"bob","groups":["a","b"]}`},
		{name: "result and error", got: NewReply().WithResult([]int{1, 2}).WithError("nope"),
			want: `{"result":[1,2],"error":"nope"}`},
		{name: "nil receiver allocates", got: (*Reply)(nil).Broadcast("t").SendToUser("u", "t"),
			want: `{"actions":[{"action":"broadcast","target":"t","arguments":[]},{"action":"sendToUser","target":"t","arguments":[],"user":"u"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.got)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(b) != tt.want {
				t.Errorf("got %s\nwant %s", b, tt.want)
			}
			for i, a := range tt.got.Actions {
				if err := a.Validate(true); err != nil {
					t.Errorf("actions[%d].Validate(true) = %v", i, err)
				}
				if err := a.Validate(false); (err != nil) != tt.callerRelative {
					t.Errorf("actions[%d].Validate(false) = %v, want error: %v", i, err, tt.callerRelative)
				}
			}
			// What the builders produce is what ParseReply accepts.
			back, err := ParseReply(b, true)
			if err != nil {
				t.Fatalf("ParseReply: %v", err)
			}
			if b2, _ := json.Marshal(back); string(b2) != tt.want {
				t.Errorf("round trip: got %s, want %s", b2, tt.want)
			}
		})
	}
}

func TestReplyBuilderPanicsOnUnencodable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func()
	}{
		{name: "result", build: func() { NewReply().WithResult(make(chan int)) }},
		{name: "argument", build: func() { NewReply().Broadcast("t", func() {}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.build()
		})
	}
}

func TestParseReply(t *testing.T) {
	t.Parallel()
	bob := "bob"
	tests := []struct {
		name        string
		body        string
		callerKnown bool
		want        *Reply
		wantErr     string // substring; "" means success
		wantInvalid bool   // error also wraps actions.ErrInvalid
	}{
		{name: "empty", body: "", want: nil},
		{name: "whitespace", body: " \n", want: nil},
		{name: "empty object", body: `{}`, want: &Reply{}},
		{name: "connect accept", body: `{"userId":"bob","groups":["a"]}`, want: &Reply{UserID: &bob, Groups: []string{"a"}}},
		{name: "message result", body: ` {"result":{"ok":true},"unknown":1}`, want: &Reply{Result: json.RawMessage(`{"ok":true}`)}},
		{name: "error", body: `{"error":"nope"}`, want: &Reply{Error: "nope"}},
		{name: "actions", body: `{"actions":[{"action":"sendToGroup","group":"g","target":"t","arguments":[1]},{"action":"addToGroup","group":"g"}]}`, callerKnown: true,
			want: &Reply{Actions: []actions.Action{
				{Action: actions.SendToGroup, Group: "g", Target: "t", Arguments: json.RawMessage(`[1]`)},
				{Action: actions.AddToGroup, Group: "g"},
			}}},
		{name: "unknown action with index", body: `{"actions":[{"action":"broadcast","target":"t"},{"action":"broadcast","target":"t"},{"action":"explode"}]}`,
			wantErr: `actions[2]: unknown action "explode"`, wantInvalid: true},
		{name: "missing action name", body: `{"actions":[{"target":"t"}]}`, wantErr: `actions[0]: the "action" field is missing`, wantInvalid: true},
		{name: "bad arguments type", body: `{"actions":[{"action":"broadcast","target":"t","arguments":"hi"}]}`,
			wantErr: "actions[0]: broadcast: arguments must be a JSON array", wantInvalid: true},
		{name: "caller unknown", body: `{"actions":[{"action":"closeConnection"}]}`, callerKnown: false,
			wantErr: "actions[0]: closeConnection: connectionId is required", wantInvalid: true},
		{name: "action not an object", body: `{"actions":[{"action":"broadcast","target":"t"}, "x"]}`, wantErr: "actions[1]: an action must be a JSON object"},
		{name: "action field wrong type", body: `{"actions":[{"action":"sendToUser","user":5,"target":"t"}]}`, wantErr: "actions[0]:"},
		{name: "actions not an array", body: `{"actions":{}}`, wantErr: "bad reply"},
		{name: "empty group", body: `{"groups":["a",""]}`, wantErr: "groups[1]"},
		{name: "group with control character", body: `{"groups":["a\u0000b"]}`, wantErr: "groups[0]: group name \"a\\x00b\" contains a control character"},
		{name: "blank group", body: `{"groups":["  "]}`, wantErr: "groups[0]: group name is only whitespace"},
		{name: "huge user id", body: `{"userId":"` + strings.Repeat("u", 100<<10) + `"}`, wantErr: "userId: user id is 102400 bytes long; the limit is 1024"},
		{name: "user id with CRLF", body: `{"userId":"bob\r\nX-Admin: 1"}`, wantErr: "userId: user id \"bob\\r\\nX-Admin: 1\" contains a control character"},
		{name: "empty user id is anonymous", body: `{"userId":""}`, want: &Reply{UserID: new("")}},
		{name: "dot target in action", body: `{"actions":[{"action":"broadcast","target":".."}]}`, wantErr: `actions[0]: broadcast: target ".." is not a method name`, wantInvalid: true},
		{name: "too many actions", body: `{"actions":[` + strings.Repeat(`{"action":"broadcast","target":"t"},`, 100) + `{"action":"broadcast","target":"t"}]}`,
			wantErr: "the reply carries 101 actions; the limit is 100 per reply"},
		{name: "array", body: `[]`, wantErr: "JSON object"},
		{name: "null", body: `null`, wantErr: "JSON object"},
		{name: "string", body: `"ok"`, wantErr: "JSON object"},
		{name: "truncated", body: `{"result":`, wantErr: "bad reply"},
		{name: "trailing garbage", body: `{} {}`, wantErr: "bad reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseReply([]byte(tt.body), tt.callerKnown)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if !errors.Is(err, ErrBadReply) {
					t.Errorf("err %v does not wrap ErrBadReply", err)
				}
				if errors.Is(err, actions.ErrInvalid) != tt.wantInvalid {
					t.Errorf("errors.Is(err, actions.ErrInvalid) = %v, want %v", !tt.wantInvalid, tt.wantInvalid)
				}
				if got != nil {
					t.Errorf("got %+v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseReplyMaxActions(t *testing.T) {
	t.Parallel()
	reply := func(n int) []byte {
		return []byte(`{"actions":[` + strings.TrimSuffix(strings.Repeat(`{"action":"broadcast","target":"t"},`, n), ",") + `]}`)
	}
	tests := []struct {
		name string
		n    int
		opts []ParseOption
		want string // "" means accepted
	}{
		{"default limit reached", actions.DefaultMaxActions, nil, ""},
		{"default limit passed", actions.DefaultMaxActions + 1, nil, "carries 101 actions; the limit is 100"},
		{"raised", 150, []ParseOption{WithMaxActions(150)}, ""},
		{"lowered", 3, []ParseOption{WithMaxActions(2)}, "carries 3 actions; the limit is 2"},
		{"zero means default", 100, []ParseOption{WithMaxActions(0)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseReply(reply(tt.n), true, tt.opts...)
			if tt.want == "" {
				if err != nil || len(r.Actions) != tt.n {
					t.Fatalf("got %v, want %d actions", err, tt.n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrBadReply) {
				t.Fatalf("got %v, want ErrBadReply containing %q", err, tt.want)
			}
		})
	}
}

func TestValidateConnect(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("u", 100<<10)
	tests := []struct {
		name string
		r    *Reply
		want string // "" means valid
	}{
		{"nil", nil, ""},
		{"empty", &Reply{}, ""},
		{"user and groups", &Reply{UserID: new("alice"), Groups: []string{"a", "room 1"}}, ""},
		{"anonymous", &Reply{UserID: new("")}, ""},
		{"huge user", &Reply{UserID: &huge}, "userId: user id is 102400 bytes long; the limit is 1024"},
		{"bad group", &Reply{Groups: []string{"ok", "a\nb"}}, `groups[1]: group name "a\nb" contains a control character`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.r.ValidateConnect()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, input.ErrInvalid) {
				t.Fatalf("got %v, want an input.ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}
