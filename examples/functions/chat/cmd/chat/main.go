// Command chat runs the example chat function on its own, against a gateway
// started separately:
//
//	SWITCHBOARD_CONNECTION_STRING='Endpoint=http://localhost:8080;AccessKey=…;Version=1.0;' \
//	WEBHOOK_SECRET='whsec_…' go run ./examples/functions/chat/cmd/chat -listen 127.0.0.1:3000
//
// then register http://127.0.0.1:3000/api/webhook as the chat hub's
// upstream with that secret (switchboard upstream add … --secret). Started
// without WEBHOOK_SECRET it answers the registration check and refuses
// webhooks (503) until restarted with the secret registration printed.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/examples/functions/chat"
	"github.com/switchboard-gw/switchboard/negotiate"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3000", "address to serve the app on")
	webDir := flag.String("web", "", "folder with the npm install of @microsoft/signalr (default examples/functions/chat/web)")
	flag.Parse()
	cs, err := negotiate.ParseConnectionString(os.Getenv("SWITCHBOARD_CONNECTION_STRING"))
	if err != nil {
		log.Fatalf("SWITCHBOARD_CONNECTION_STRING: %v", err)
	}
	secrets := strings.Fields(os.Getenv("WEBHOOK_SECRET")) // two during a rotation
	if len(secrets) == 0 {
		log.Print("WEBHOOK_SECRET is not set: the registration check will pass, webhooks get 503 until you restart with the secret")
	}
	h := chat.New(chat.Config{Gateway: cs, WebhookSecrets: secrets, WebDir: *webDir})
	log.Printf("chat function on %s", *listen)
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
