package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// The REST calls below are made as Azure's SDKs make them (azureREST: aud
// with the query, api-version 2022-06-01) against a real node, and what they
// do is observed on live clients.

const apiVersion = "api-version=2022-06-01"

// TestRESTUserGroupTTLEnds: a user added to a group with a ttl receives the
// group's messages, on a connection open before the add and on one opened
// after it, until the ttl runs out; then the membership check flips from
// 200 to 404 and group sends stop reaching it.
func TestRESTUserGroupTTLEnds(t *testing.T) {
	g, connect := restRig(t)
	az := newAzureREST(t, g.cs.String())
	a := connect("ua")
	var a2 *peer
	var group string
	var ttl time.Duration
	// Whether the ttl ran out before the checks is a matter of this
	// machine's speed: a try whose checks took longer than the ttl proves
	// nothing, and the next one doubles the ttl.
	for secs := 2; ; secs *= 2 {
		if secs > 32 {
			t.Fatal("no try finished its checks within its ttl")
		}
		ttl, group = time.Duration(secs)*time.Second, fmt.Sprintf("brief%d", secs)
		start := time.Now()
		if r := az.send(http.MethodPut, fmt.Sprintf("/api/hubs/chat/users/ua/groups/%s?ttl=%d&%s", group, secs, apiVersion), "", nil); r.status != http.StatusOK {
			t.Fatalf("add ua to %s with ttl: %d %s", group, r.status, r.body)
		}
		a2 = connect("ua") // joins through the saved membership
		g.restWant(http.MethodPost, "/api/hubs/chat/groups/"+group+"/:send", msg("before"), http.StatusAccepted)
		barrier := "barrier " + group
		g.restWant(http.MethodPost, "/api/hubs/chat/:send", msg(barrier), http.StatusAccepted)
		got := map[*peer]bool{}
		for _, p := range []*peer{a, a2} {
			switch first := str(t, p.box.next(t)[0]); first {
			case "before":
				got[p] = true
				p.expect(t, barrier)
			case barrier:
			default:
				t.Fatalf("%s got %q, want the group message or the barrier", p.id(), first)
			}
		}
		statuses := map[string]int{}
		for _, m := range []string{http.MethodHead, http.MethodGet} {
			statuses[m] = az.send(m, "/api/hubs/chat/users/ua/groups/"+group+"?"+apiVersion, "", nil).status
		}
		if time.Since(start) >= ttl {
			t.Logf("the checks took longer than the ttl of %s; trying a longer one", ttl)
			continue
		}
		if !got[a] || !got[a2] {
			t.Fatalf("within the ttl: the connection open before the add got the group message: %v, the one opened after: %v", got[a], got[a2])
		}
		if statuses[http.MethodHead] != http.StatusOK || statuses[http.MethodGet] != http.StatusOK {
			t.Fatalf("within the ttl: user in group answered %v, want 200", statuses)
		}
		break
	}

	testutil.Eventually(t, ttl+waitFor, "the membership to end when its ttl ran out", func() bool {
		return az.send(http.MethodHead, "/api/hubs/chat/users/ua/groups/"+group+"?"+apiVersion, "", nil).status == http.StatusNotFound
	})
	for _, m := range []string{http.MethodHead, http.MethodGet} {
		for path, code := range map[string]string{
			"/api/hubs/chat/users/ua/groups/" + group: "Info.User.NotInGroup",
			"/api/hubs/chat/groups/" + group:          "Warning.Group.NotExisted",
		} {
			r := az.send(m, path+"?"+apiVersion, "", nil)
			if r.status != http.StatusNotFound || r.header.Get("x-ms-error-code") != code {
				t.Errorf("%s %s after the ttl: %d %q, want 404 %q", m, path, r.status, r.header.Get("x-ms-error-code"), code)
			}
		}
	}
	g.restWant(http.MethodPost, "/api/hubs/chat/groups/"+group+"/:send", msg("after"), http.StatusAccepted)
	g.restWant(http.MethodPost, "/api/hubs/chat/users/ua/:send", msg("end"), http.StatusAccepted)
	a.expect(t, "end")
	a2.expect(t, "end")
}

func packMsg(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sdkBinaryBody is an application/octet-stream body as Azure's Management
// SDK writes it (BinaryPayloadMessageContent): a MessagePack map from each
// configured hub protocol's name to the invocation in that protocol, as bin.
func sdkBinaryBody(t *testing.T, names []string, serialized [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	if err := enc.EncodeMapLen(len(names)); err != nil {
		t.Fatal(err)
	}
	for i, name := range names {
		if err := enc.EncodeString(name); err != nil {
			t.Fatal(err)
		}
		if err := enc.EncodeBytes(serialized[i]); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestRESTMessagePackBodies: every send takes Azure's MessagePack forms;
// the arguments reach a JSON client as JSON; bad bodies get a 400 (415 where
// MessagePack is not taken) saying what is wrong, and reach nobody.
func TestRESTMessagePackBodies(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	az := newAzureREST(t, g.cs.String())
	box := newInbox()
	alice := g.dial("chat", "alice", map[string]func([]json.RawMessage){"newMessage": box.handler()})
	if r := az.send(http.MethodPut, "/api/hubs/chat/groups/room/connections/"+alice.ConnectionID()+"?"+apiVersion, "", nil); r.status != http.StatusOK {
		t.Fatalf("join room: %d %s", r.status, r.body)
	}
	stamp := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	args := []any{"hi", 42, 1.5, true, nil, []byte{1, 2, 3}, map[string]any{"k": []any{"v"}}, stamp}
	const want = `["hi",42,1.5,true,null,"AQID",{"k":["v"]},"2024-05-06T07:08:09.00000001Z"]`
	jsonInvocation := []byte(`{"type":1,"target":"newMessage","arguments":` + want + "}\x1e")
	packed := packMsg(t, []any{1, map[string]string{}, nil, "newMessage", args, []string{}})
	packedInvocation := append(binary.AppendUvarint(nil, uint64(len(packed))), packed...)

	const xmsgpack, octet = "application/x-msgpack", "application/octet-stream"
	sends := []struct {
		name, path, contentType string
		body                    []byte
	}{
		{"x-msgpack broadcast", "/api/hubs/chat/:send", xmsgpack,
			packMsg(t, map[string]any{"target": "newMessage", "arguments": args})},
		{"x-msgpack to a group, keys as the SDK's JSON writes them", "/api/hubs/chat/groups/room/:send", xmsgpack,
			packMsg(t, map[string]any{"Target": "newMessage", "Arguments": args})},
		{"octet-stream to a user, both protocols as the SDK sends them", "/api/hubs/chat/users/alice/:send", octet,
			sdkBinaryBody(t, []string{"json", "messagepack"}, [][]byte{jsonInvocation, packedInvocation})},
		{"octet-stream to a connection, MessagePack protocol only", "/api/hubs/chat/connections/" + alice.ConnectionID() + "/:send", octet,
			sdkBinaryBody(t, []string{"messagepack"}, [][]byte{packedInvocation})},
		{"v1 x-msgpack to a group", "/api/v1/hubs/chat/groups/room", xmsgpack,
			packMsg(t, map[string]any{"target": "newMessage", "arguments": args})},
	}
	for _, s := range sends {
		if r := az.send(http.MethodPost, s.path+"?"+apiVersion, s.contentType, s.body); r.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", s.name, r.status, r.body)
		}
		got, err := json.Marshal(box.next(t))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("%s: the client got %s, want %s", s.name, got, want)
		}
	}

	bad := []struct {
		name, path, contentType string
		body                    []byte
		status                  int
		code, says              string
	}{
		{"JSON sent as x-msgpack", "/api/hubs/chat/:send", xmsgpack, []byte(`{"target":"newMessage"}`),
			400, "Error.InvalidBody", "must be a MessagePack map"},
		{"x-msgpack without target", "/api/hubs/chat/:send", xmsgpack, packMsg(t, map[string]any{"arguments": []any{1}}),
			400, "Error.InvalidBody", `"target" is missing`},
		{"x-msgpack arguments not an array", "/api/hubs/chat/:send", xmsgpack, packMsg(t, map[string]any{"target": "newMessage", "arguments": "x"}),
			400, "Error.InvalidBody", `"arguments" must be an array`},
		{"NaN has no JSON form", "/api/hubs/chat/:send", xmsgpack, packMsg(t, map[string]any{"target": "newMessage", "arguments": []any{float64NaN()}}),
			400, "Error.InvalidBody", "no JSON form"},
		{"octet-stream for an unknown protocol only", "/api/hubs/chat/:send", octet, sdkBinaryBody(t, []string{"xml"}, [][]byte{[]byte("<x/>")}),
			400, "Error.InvalidBody", `no "json" or "messagepack" entry`},
		{"octet-stream with a broken JSON invocation", "/api/hubs/chat/:send", octet, sdkBinaryBody(t, []string{"json"}, [][]byte{[]byte(`{"type":1}` + "\x1e")}),
			400, "Error.InvalidBody", `"target" must be a non-empty string`},
		{"MessagePack batch of actions", "/api/hubs/chat/:actions", xmsgpack, packMsg(t, []any{map[string]any{"action": "broadcast"}}),
			415, "Error.UnsupportedMediaType", "send the batch as application/json"},
	}
	for _, b := range bad {
		r := az.send(http.MethodPost, b.path+"?"+apiVersion, b.contentType, b.body)
		if r.status != b.status || r.errorCode(t) != b.code || !strings.Contains(r.errorMessage(t), b.says) {
			t.Errorf("%s: %d %s, want %d %s saying %q", b.name, r.status, r.body, b.status, b.code, b.says)
		}
	}
	// None of them reached the client: the next message is this one.
	g.restWant(http.MethodPost, "/api/hubs/chat/:send", map[string]any{"target": "newMessage", "arguments": []string{"last"}}, http.StatusAccepted)
	if got := str(t, box.next(t)[0]); got != "last" {
		t.Fatalf("after the refused bodies the client got %q, want \"last\"", got)
	}
}

// errorMessage is the message of an ErrorDetail answer.
func (r restResp) errorMessage(t *testing.T) string {
	t.Helper()
	var d struct{ Message string }
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return d.Message
}

// float64NaN is computed at run time: MessagePack can carry it, JSON cannot.
func float64NaN() float64 {
	zero := 0.0
	return zero / zero
}

// TestRESTExistenceChecksAnswerGET: every existence check answers GET as
// well as HEAD, with the status and error code Azure's SDKs look for; a
// GET's 404 carries the ErrorDetail body too.
func TestRESTExistenceChecksAnswerGET(t *testing.T) {
	g, connect := restRig(t)
	az := newAzureREST(t, g.cs.String())
	alice := connect("alice")
	if r := az.send(http.MethodPut, "/api/hubs/chat/users/alice/groups/admins?"+apiVersion, "", nil); r.status != http.StatusOK {
		t.Fatalf("add alice to admins: %d %s", r.status, r.body)
	}
	checks := []struct {
		path string
		code string // "" for 200
	}{
		{"/api/hubs/chat/connections/" + alice.id(), ""},
		{"/api/hubs/chat/connections/n1.nobody", "Warning.Connection.NotExisted"},
		{"/api/hubs/chat/users/alice", ""},
		{"/api/hubs/chat/users/nobody", "Warning.User.NotExisted"},
		{"/api/hubs/chat/groups/admins", ""},
		{"/api/hubs/chat/groups/empty", "Warning.Group.NotExisted"},
		// What the Management SDK's IsUserInGroup sends (with GET).
		{"/api/hubs/chat/users/alice/groups/admins", ""},
		{"/api/hubs/chat/users/alice/groups/others", "Info.User.NotInGroup"},
		{"/api/v1/hubs/chat/connections/" + alice.id(), ""},
		{"/api/v1/hubs/chat/users/alice", ""},
		{"/api/v1/hubs/chat/users/nobody", "Warning.User.NotExisted"},
		{"/api/v1/hubs/chat/groups/admins", ""},
		{"/api/v1/hubs/chat/groups/empty", "Warning.Group.NotExisted"},
		{"/api/v1/hubs/chat/groups/admins/users/alice", ""},
		{"/api/v1/hubs/chat/groups/others/users/alice", "Info.User.NotInGroup"},
	}
	for _, c := range checks {
		for _, m := range []string{http.MethodHead, http.MethodGet} {
			r := az.send(m, c.path+"?"+apiVersion, "", nil)
			switch {
			case c.code == "" && (r.status != http.StatusOK || len(r.body) != 0):
				t.Errorf("%s %s: %d %q, want 200 without a body", m, c.path, r.status, r.body)
			case c.code != "" && (r.status != http.StatusNotFound || r.header.Get("x-ms-error-code") != c.code):
				t.Errorf("%s %s: %d %q, want 404 %s", m, c.path, r.status, r.header.Get("x-ms-error-code"), c.code)
			case c.code != "" && m == http.MethodGet && r.errorCode(t) != c.code:
				t.Errorf("GET %s: body %s, want the ErrorDetail of %s", c.path, r.body, c.code)
			}
		}
	}
}

// TestRESTApplication: the application query parameter addresses hub
// "{application}_{hub}", as Azure's SDKs expect, on every kind of route and
// in :generateToken; a bad one is refused, never ignored.
func TestRESTApplication(t *testing.T) {
	g := startNode(t)
	g.createHub("myapp_chat", false)
	g.createHub("chat", false)
	az := newAzureREST(t, g.cs.String())
	appBox, plainBox := newInbox(), newInbox()
	inApp := g.dial("myapp_chat", "alice", map[string]func([]json.RawMessage){"msg": appBox.handler()})
	plain := g.dial("chat", "alice", map[string]func([]json.RawMessage){"msg": plainBox.handler()})
	app := &peer{conn: inApp, box: appBox}
	other := &peer{conn: plain, box: plainBox}
	const q = "?application=myapp&" + apiVersion
	body := func(text string) []byte { return []byte(`{"target":"msg","arguments":["` + text + `"]}`) }
	call := func(method, path string, b []byte, want int) restResp {
		t.Helper()
		ct := ""
		if b != nil {
			ct = "application/json"
		}
		r := az.send(method, path, ct, b)
		if r.status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
		}
		return r
	}
	// Sends of every kind reach the application's hub and only it.
	call(http.MethodPost, "/api/hubs/chat/:send"+q, body("broadcast"), http.StatusAccepted)
	call(http.MethodPost, "/api/hubs/chat/users/alice/:send"+q, body("user"), http.StatusAccepted)
	call(http.MethodPut, "/api/hubs/chat/users/alice/groups/g"+q, nil, http.StatusOK)
	call(http.MethodGet, "/api/hubs/chat/users/alice/groups/g"+q, nil, http.StatusOK)
	call(http.MethodGet, "/api/hubs/chat/users/alice/groups/g?"+apiVersion, nil, http.StatusNotFound)
	call(http.MethodPost, "/api/hubs/chat/groups/g/:send"+q, body("group"), http.StatusAccepted)
	call(http.MethodPost, "/api/v1/hubs/chat/connections/"+app.id()+q, body("v1 connection"), http.StatusAccepted)
	app.expect(t, "broadcast", "user", "group", "v1 connection")
	call(http.MethodPost, "/api/hubs/chat/:send?"+apiVersion, body("plain"), http.StatusAccepted)
	other.expect(t, "plain") // the first message the plain hub's client got
	call(http.MethodHead, "/api/hubs/chat/connections/"+app.id()+q, nil, http.StatusOK)
	call(http.MethodHead, "/api/hubs/chat/connections/"+app.id()+"?"+apiVersion, nil, http.StatusNotFound)

	// A token generated with the application is for its hub.
	r := call(http.MethodPost, "/api/hubs/chat/:generateToken"+q+"&userId=bob", nil, http.StatusOK)
	var tok struct{ Token, URL string }
	if err := json.Unmarshal(r.body, &tok); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok.Token, claims); err != nil {
		t.Fatal(err)
	}
	if aud, _ := claims.GetAudience(); len(aud) != 1 || !strings.HasSuffix(aud[0], "/client/?hub=myapp_chat") || !strings.HasSuffix(tok.URL, "hub=myapp_chat") {
		t.Fatalf("generated token aud %v, url %q: want hub myapp_chat", aud, tok.URL)
	}
	if status, b := do(t, http.MethodPost, g.url+"/client/negotiate?hub=myapp_chat", tok.Token, nil); status != http.StatusOK {
		t.Fatalf("negotiate with the generated token: %d %s", status, b)
	}

	refused := []struct {
		query, code, says string
		status            int
	}{
		{"?application=1app", "Error.InvalidApplication", `invalid application "1app"`, 400},
		{"?application=my-app", "Error.InvalidApplication", `invalid application "my-app"`, 400},
		{"?application=a&application=b", "Error.InvalidApplication", "give it at most once", 400},
		{"?application=" + strings.Repeat("a", 125), "Error.InvalidApplication", "the limit is 128", 400},
		{"?application=other", "Error.HubNotFound", `hub "other_chat" not found`, 404},
	}
	for _, c := range refused {
		for _, path := range []string{"/api/hubs/chat/:send", "/api/hubs/chat/:generateToken", "/api/v1/hubs/chat/groups/g/users/alice"} {
			method, b := http.MethodPost, body("refused")
			if strings.HasPrefix(path, "/api/v1") {
				method, b = http.MethodGet, nil
			}
			r := az.send(method, path+c.query, "application/json", b)
			if r.status != c.status || r.errorCode(t) != c.code || !strings.Contains(r.errorMessage(t), c.says) {
				t.Errorf("%s %s%s: %d %s, want %d %s saying %s", method, path, c.query, r.status, r.body, c.status, c.code, c.says)
			}
		}
	}
	call(http.MethodPost, "/api/hubs/chat/:send"+q, body("after"), http.StatusAccepted)
	app.expect(t, "after")
}
