package chat

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/rest"
	"github.com/switchboard-gw/switchboard/upstream"
)

// Hub is the hub the example uses.
const Hub = "chat"

//go:embed web/index.html
var page []byte

// Config configures the example app.
type Config struct {
	// Gateway is the connection string of the gateway (for negotiate).
	Gateway negotiate.ConnectionString
	// Cluster, when set, negotiates through the gateway's REST API so each
	// client is handed the least loaded live node (see docs/cluster.md);
	// without it every client goes to Gateway's endpoint.
	Cluster *rest.Client
	// WebhookSecrets verify the gateway's webhooks. Empty means not
	// registered yet: the app answers the registration check and refuses
	// webhooks (503) until it is given the secret.
	WebhookSecrets []string
	// WebDir holds the npm install of @microsoft/signalr (node_modules).
	// Empty means "examples/functions/chat/web".
	WebDir string
}

// New returns the app's handler.
func New(cfg Config) http.Handler {
	if cfg.WebDir == "" {
		cfg.WebDir = filepath.Join("examples", "functions", "chat", "web")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /signalr.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, filepath.Join(cfg.WebDir, "node_modules", "@microsoft", "signalr", "dist", "browser", "signalr.min.js"))
	})
	mux.HandleFunc("POST /api/negotiate", func(w http.ResponseWriter, r *http.Request) {
		user := strings.TrimSpace(r.URL.Query().Get("user"))
		if user == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "pass ?user=NAME"})
			return
		}
		var resp negotiate.Response
		var err error
		if cfg.Cluster != nil {
			resp, err = cfg.Cluster.Hub(Hub).Negotiate(r.Context(), user, 0)
		} else {
			resp, err = negotiate.NewResponse(cfg.Gateway, Hub, user)
		}
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
	mux.Handle("POST /api/webhook", upstream.Handler(cfg.WebhookSecrets, handle))
	mux.Handle("OPTIONS /api/webhook", upstream.Handler(cfg.WebhookSecrets, handle))
	return mux
}

// handle is the whole server side of the chat.
func handle(_ context.Context, ev *upstream.Event) (*upstream.Reply, error) {
	user := ev.User()
	switch ev.Event {
	case upstream.EventConnect:
		if user == "blocked" {
			return nil, upstream.Reject("user \"blocked\" may not chat")
		}
		return upstream.NewReply().JoinGroups("lobby"), nil
	case upstream.EventConnected:
		return upstream.NewReply().BroadcastExcept([]string{ev.ConnectionID}, "system", user+" joined"), nil
	case upstream.EventDisconnected:
		return upstream.NewReply().Broadcast("system", user+" left"), nil
	}

	var args []json.RawMessage
	if len(ev.Arguments) > 0 {
		if err := json.Unmarshal(ev.Arguments, &args); err != nil {
			return nil, fmt.Errorf("arguments must be an array: %w", err)
		}
	}
	str := func(i int) (string, error) {
		var s string
		if i >= len(args) || json.Unmarshal(args[i], &s) != nil || s == "" {
			return "", fmt.Errorf("%s: argument %d must be a non-empty string", ev.Target, i+1)
		}
		return s, nil
	}
	switch strings.ToLower(ev.Target) {
	case "sendmessage":
		text, err := str(0)
		if err != nil {
			return nil, err
		}
		return upstream.NewReply().Broadcast("newMessage", user, text).WithResult("sent"), nil
	case "joinroom", "leaveroom":
		room, err := str(0)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(ev.Target, "joinRoom") {
			return upstream.NewReply().AddToGroup(room).SendToGroup(room, "system", user+" entered "+room).WithResult(room), nil
		}
		return upstream.NewReply().RemoveFromGroup(room).WithResult(room), nil
	case "sendtoroom":
		room, err := str(0)
		if err != nil {
			return nil, err
		}
		text, err := str(1)
		if err != nil {
			return nil, err
		}
		return upstream.NewReply().SendToGroup(room, "roomMessage", room, user, text).WithResult("sent"), nil
	case "whoami":
		return upstream.NewReply().WithResult(map[string]string{"connectionId": ev.ConnectionID, "userId": user}), nil
	case "echo":
		return upstream.NewReply().WithResult(json.RawMessage(ev.Arguments)), nil
	}
	return nil, fmt.Errorf("unknown method %q; try sendMessage, joinRoom, leaveRoom, sendToRoom, whoami or echo", ev.Target)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
