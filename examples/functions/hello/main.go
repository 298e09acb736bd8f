// Command hello is the function of README's tour: one upstream handler and
// the app's own negotiate endpoint, with nothing else around them.
//
//	SWITCHBOARD_CONNECTION_STRING='Endpoint=…;AccessKey=…;Version=1.0;' \
//	CHAT_WEBHOOK_SECRET='whsec_…' go run ./examples/functions/hello --listen 127.0.0.1:3000
//
// It may start before its upstream is registered and without
// CHAT_WEBHOOK_SECRET: upstream.Handler then answers the gateway's
// registration check and refuses webhooks (503) until it is restarted with
// the secret. Clients call sendMessage(text); the handler checks the
// arguments before it uses them, as every handler should: they come from
// the client.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/upstream"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3000", "address to serve the function on")
	flag.Parse()
	cs, err := negotiate.ParseConnectionString(os.Getenv("SWITCHBOARD_CONNECTION_STRING"))
	if err != nil {
		log.Fatalf("SWITCHBOARD_CONNECTION_STRING (printed at the gateway's first start): %v", err)
	}
	secret := os.Getenv("CHAT_WEBHOOK_SECRET")
	if secret == "" {
		log.Print("CHAT_WEBHOOK_SECRET is not set: the registration check will pass, webhooks get 503 until you restart with the secret")
	}

	http.Handle("/api/webhook", upstream.Handler([]string{secret},
		func(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
			switch ev.Event {
			case upstream.EventConnect: // blocking: accept, reject or shape the client
				return upstream.NewReply().JoinGroups("lobby"), nil
			case upstream.EventMessage: // a client invoke("sendMessage", text)
				if !strings.EqualFold(ev.Target, "sendMessage") {
					return nil, upstream.Reject(fmt.Sprintf("unknown method %q; try sendMessage", ev.Target))
				}
				var args []string // arguments come from the client: check them
				if err := json.Unmarshal(ev.Arguments, &args); err != nil || len(args) != 1 || args[0] == "" {
					return nil, upstream.Reject("sendMessage takes one non-empty string")
				}
				return upstream.NewReply().Broadcast("newMessage", ev.User(), args[0]).WithResult("sent"), nil
			}
			return nil, nil // connected, disconnected: nothing to do
		}))

	http.HandleFunc("POST /api/negotiate", func(w http.ResponseWriter, r *http.Request) {
		user := currentUser(r)
		if user == "" {
			http.Error(w, `{"error":"sign in first"}`, http.StatusUnauthorized)
			return
		}
		resp, err := negotiate.NewResponse(cs, "chat", user) // {url, accessToken}
		if err != nil {
			http.Error(w, `{"error":"cannot issue a token"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})

	log.Printf("hello function on http://%s", *listen)
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// currentUser is who your app says the caller is, from its own session or
// sign-in. This example trusts ?user=NAME so the tour needs no sign-in;
// never do that in a real app.
func currentUser(r *http.Request) string {
	user := strings.TrimSpace(r.URL.Query().Get("user"))
	if len(user) > 64 {
		return ""
	}
	return user
}
