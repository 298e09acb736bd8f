package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/examples/functions/chat"
	"github.com/switchboard-gw/switchboard/internal/gctune"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/store"
	"github.com/switchboard-gw/switchboard/upstream"
)

func demoCmd() *cobra.Command {
	var f serveFlags
	var appListen, webDir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a gateway with the example chat function and page, on embedded defaults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.db == "" {
				dir, err := os.MkdirTemp("", "switchboard-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				f.db = filepath.Join(dir, "switchboard.db")
			}
			cfg, err := f.config()
			if err != nil {
				return err
			}
			defer gctune.Start(uint64(f.gcHeadroomMiB) << 20).Stop()
			n, err := node.Start(cfg)
			if err != nil {
				return err
			}
			appURL, err := startChatApp(n, appListen, webDir)
			if err != nil {
				_ = n.Close()
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Switchboard gateway on %s\n", n.URL())
			fmt.Fprintf(out, "Chat app (negotiate + webhook + page) on %s\n\n", appURL)
			fmt.Fprintf(out, "  Open %s in two browser tabs and chat.\n\n", appURL)
			if n.AdminKey() != "" {
				fmt.Fprintf(out, "Admin key for this run: %s\n", n.AdminKey())
			} else {
				fmt.Fprintf(out, "Admin key: the one printed when %s was made (lost: switchboard recover reset-admin-key --db %s)\n", f.db, f.db)
			}
			return runUntilSignal(n)
		},
	}
	f.register(cmd, "127.0.0.1:8080", "")
	cmd.Flags().StringVar(&appListen, "app-listen", "127.0.0.1:3000", "address of the example chat app")
	cmd.Flags().StringVar(&webDir, "web", filepath.Join("examples", "functions", "chat", "web"), "npm install folder of the chat page (make demo installs it)")
	return cmd
}

// startChatApp registers the chat hub and its upstream and serves the example
// app in this process, as a function app would run beside the gateway.
func startChatApp(n *node.Node, listen, webDir string) (string, error) {
	if _, err := os.Stat(filepath.Join(webDir, "node_modules", "@microsoft", "signalr")); err != nil {
		return "", fmt.Errorf("the chat page needs @microsoft/signalr: run `npm install --prefix %s` (make demo does)", webDir)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", fmt.Errorf("chat app: %w", err)
	}
	appURL := "http://" + ln.Addr().String()
	ctx := context.Background()
	db := n.Store()
	if _, err := db.PutHub(ctx, store.Hub{Name: chat.Hub}); err != nil {
		ln.Close()
		return "", err
	}
	secret := upstream.NewSecret()
	_, err = db.PutUpstream(ctx, store.Upstream{Hub: chat.Hub, Name: "chat-fn", URLTemplate: appURL + "/api/webhook",
		Events: []string{"connect", "connected", "disconnected", "message:*"}, Secrets: []string{secret}})
	if err != nil {
		ln.Close()
		return "", err
	}
	if err := n.ReloadConfig(ctx); err != nil {
		ln.Close()
		return "", err
	}
	cs, err := n.ConnectionString()
	if err != nil {
		ln.Close()
		return "", err
	}
	srv := &http.Server{Handler: chat.New(chat.Config{Gateway: cs, WebhookSecrets: []string{secret}, WebDir: webDir}),
		ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "chat app:", err)
		}
	}()
	return appURL, nil
}
