package upstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/switchboard-gw/switchboard/upstream"
)

// The worked signature example of docs/webhooks.md; if this output changes,
// so must the document.
func ExampleSign() {
	secret := "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=" // bytes 0x01..0x20
	id := "evt_00112233445566778899aabbccddeeff"
	ts := time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z
	body := `{"hub":"chat","connectionId":"n1.Zm9vYmFy","userId":"alice","event":"message","invocationId":"1","target":"SendMessage","arguments":["hello"]}`

	sig, err := upstream.Sign([]string{secret}, id, ts, []byte(body))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sig)
	fmt.Println(upstream.Verify([]string{secret}, id, "1767225600", sig, []byte(body), ts.Add(time.Minute)))

	// During a rotation both secrets sign; either one verifies.
	next := "whsec_ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A=" // bytes 0x21..0x40
	both, _ := upstream.Sign([]string{secret, next}, id, ts, []byte(body))
	fmt.Println(both)
	fmt.Println(upstream.Verify([]string{next}, id, "1767225600", both, []byte(body), ts))
	// Output:
	// v1,AW3exhoNda6exLl6WgKQ+f2zhpgoF7pc459jcIrRsug=
	// <nil>
	// v1,AW3exhoNda6exLl6WgKQ+f2zhpgoF7pc459jcIrRsug= v1,oRKoGuzRY5Gs08o0lBkH5zdqLBbeM9E+AK+TGrHwvUU=
	// <nil>
}

// A complete upstream for a chat hub: anonymous clients are refused, and
// every message is broadcast to the room the client joined.
func ExampleHandler() {
	secrets := []string{os.Getenv("CHAT_WEBHOOK_SECRET")}
	h := upstream.Handler(secrets, func(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
		switch ev.Event {
		case upstream.EventConnect:
			if ev.User() == "" {
				return nil, upstream.Reject("sign in first")
			}
			return upstream.NewReply().JoinGroups("lobby"), nil
		case upstream.EventMessage:
			var args []string
			if err := json.Unmarshal(ev.Arguments, &args); err != nil || len(args) != 1 {
				return nil, upstream.Reject("SendMessage takes one string")
			}
			return upstream.NewReply().SendToGroup("lobby", "newMessage", ev.User(), args[0]).WithResult("sent"), nil
		}
		return nil, nil
	})
	log.Fatal(http.ListenAndServe(":8081", h))
}

func ExampleNewReply() {
	r := upstream.NewReply().
		WithResult(map[string]int{"unread": 3}).
		SendToGroup("room1", "newMessage", "alice", "hi").
		AddToGroup("room1").
		AddUserToGroup("alice", "vip", time.Hour)
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	// Output:
	// {"result":{"unread":3},"actions":[{"action":"sendToGroup","target":"newMessage","arguments":["alice","hi"],"group":"room1"},{"action":"addToGroup","group":"room1"},{"action":"addUserToGroup","group":"vip","user":"alice","ttl":3600}]}
}

func ExampleParseReply() {
	_, err := upstream.ParseReply([]byte(`{"actions":[{"action":"broadcast","target":"t"},{"action":"explode"}]}`), true)
	fmt.Println(err)
	// Output:
	// upstream: bad reply: actions[1]: unknown action "explode"
}
