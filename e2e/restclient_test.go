package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/rest"
)

// TestRESTClient drives package rest against a real node: health, a token
// from :generateToken that a client then connects with, and the gateway's
// errors arriving as typed *rest.Error values.
func TestRESTClient(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	c, err := rest.New(g.cs.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}

	tok, err := c.Hub("chat").GenerateToken(ctx, "dora", 2*time.Minute)
	if err != nil {
		t.Fatalf("generate token: %v", err)
	}
	conn, err := client.Dial(ctx, g.url+"/client/?hub=chat", &client.Options{
		AccessToken: func(context.Context) (string, error) { return tok, nil },
	})
	if err != nil {
		t.Fatalf("dial with a generated token: %v", err)
	}
	conn.Close()

	wrongKey := g.cs
	wrongKey.AccessKey = negotiate.NewAccessKey().Secret
	bad, err := rest.New(wrongKey.String())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		client *rest.Client
		hub    string
		status int
		code   string
	}{
		{"unknown hub", c, "nohub", http.StatusNotFound, "Error.HubNotFound"},
		{"invalid hub name", c, "1bad-hub", http.StatusBadRequest, "Error.InvalidHub"},
		{"wrong key", bad, "chat", http.StatusUnauthorized, "Error.Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.Hub(tt.hub).GenerateToken(ctx, "", 0)
			var e *rest.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *rest.Error", err)
			}
			if e.Status != tt.status || e.Code != tt.code || e.Message == "" {
				t.Errorf("got %d %q %q, want %d %q with a message", e.Status, e.Code, e.Message, tt.status, tt.code)
			}
		})
	}
}
