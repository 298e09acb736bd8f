// Command chat runs the example chat function on its own, against a gateway
// started separately:
//
//	SWITCHBOARD_CONNECTION_STRING='Endpoint=http://localhost:8080;AccessKey=…;Version=1.0;' \
//	WEBHOOK_SECRET='whsec_…' go run ./examples/functions/chat/cmd/chat -listen :3000
//
// then register http://localhost:3000/api/webhook as the chat hub's upstream
// with that secret (switchboard upstream add …).
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/switchboard-gw/switchboard/examples/functions/chat"
	"github.com/switchboard-gw/switchboard/negotiate"
)

func main() {
	listen := flag.String("listen", ":3000", "address to serve the app on")
	webDir := flag.String("web", "", "folder with the npm install of @microsoft/signalr (default examples/functions/chat/web)")
	flag.Parse()
	cs, err := negotiate.ParseConnectionString(os.Getenv("SWITCHBOARD_CONNECTION_STRING"))
	if err != nil {
		log.Fatalf("SWITCHBOARD_CONNECTION_STRING: %v", err)
	}
	secret := os.Getenv("WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("WEBHOOK_SECRET is required: the upstream's signing secret")
	}
	h := chat.New(chat.Config{Gateway: cs, WebhookSecrets: []string{secret}, WebDir: *webDir})
	log.Printf("chat function on %s", *listen)
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
