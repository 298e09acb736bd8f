package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/upstream"
)

// benchGroup is the group every client of fanout and chat joins through the
// upstream's connect reply.
const benchGroup = "bench"

// localUpstream is the minimal function the tool registers: it verifies the
// signature like any handler and answers at once. connect joins the bench
// group; "echo" returns its arguments; "chat" sends its arguments to the
// group.
type localUpstream struct {
	url    string
	secret string
	srv    *http.Server
	ln     net.Listener
}

func startUpstream() (*localUpstream, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &localUpstream{url: "http://" + ln.Addr().String(), secret: upstream.NewSecret(), ln: ln}
	u.srv = &http.Server{Handler: upstream.Handler([]string{u.secret}, handle), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

func handle(_ context.Context, ev *upstream.Event) (*upstream.Reply, error) {
	switch {
	case ev.Event == upstream.EventConnect:
		return upstream.NewReply().JoinGroups(benchGroup), nil
	case ev.Event != upstream.EventMessage:
		return nil, nil
	case ev.Target == "echo":
		return upstream.NewReply().WithResult(ev.Arguments), nil
	case ev.Target == "chat":
		// The arguments pass through as they came, as raw JSON.
		return &upstream.Reply{Actions: []actions.Action{{
			Action: actions.SendToGroup, Group: benchGroup, Target: "chat", Arguments: ev.Arguments,
		}}}, nil
	}
	return nil, errors.New("unknown target " + ev.Target)
}

func (u *localUpstream) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = u.srv.Shutdown(ctx)
}
