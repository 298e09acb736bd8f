package natsembed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// RandomPort asks for a port chosen by the system, for Options.Port and
// Options.ClusterPort.
const RandomPort = -1

// DefaultClusterName is the NATS cluster name used when Options.ClusterName
// is empty. Every server of one cluster must use the same name.
const DefaultClusterName = "switchboard"

// startTimeout bounds how long Start waits for the server to accept clients
// and, when clustered, for JetStream to elect a meta leader.
const startTimeout = 30 * time.Second

// Options configures Start. The zero value is not enough: StoreDir is
// required.
type Options struct {
	// Name is the server name, unique within a cluster: clustered JetStream
	// knows its peers by it, so a server restarted on the same StoreDir
	// should keep its name. Empty means the server's random id.
	Name string
	// Host is the address the client and cluster listeners bind to. Empty
	// means 127.0.0.1: an embedded server is for one machine unless asked.
	Host string
	// Port is the client port. Zero or RandomPort means a random free port.
	Port int
	// StoreDir is where JetStream keeps its files. Required.
	StoreDir string
	// ClusterName names the NATS cluster. Empty means DefaultClusterName.
	ClusterName string
	// ClusterPort is the port other servers route to; it is used only with
	// Routes. Zero or RandomPort means a random free port.
	ClusterPort int
	// Routes lists the cluster URLs (nats-route://host:port) of the servers
	// of the cluster, and may include this server's own (a route to itself
	// is ignored, so every server can be given the same list). Empty means a
	// standalone server. JetStream runs clustered exactly when Routes is
	// set: nats-server refuses clustered JetStream without configured routes.
	Routes []string
}

// Server is a running embedded NATS server.
type Server struct {
	ns        *server.Server
	clustered bool
}

// Start starts a server and returns once it accepts client connections and
// JetStream is enabled. A clustered server cannot serve JetStream requests
// before its cluster elected a meta leader, which needs a quorum of the
// servers running: Start does not wait for that (the other servers may be
// started after this one returns); call [Server.WaitJetStream].
func Start(opts Options) (*Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("natsembed: start: StoreDir is required")
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := opts.Port
	if port == 0 {
		port = RandomPort
	}
	so := &server.Options{
		ServerName: opts.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoLog:      true,
		NoSigs:     true,
	}
	if opts.ClusterPort != 0 && len(opts.Routes) == 0 {
		return nil, errors.New("natsembed: start: ClusterPort without Routes: clustered JetStream needs routes")
	}
	if len(opts.Routes) > 0 {
		cport := opts.ClusterPort
		if cport == 0 {
			cport = RandomPort
		}
		name := opts.ClusterName
		if name == "" {
			name = DefaultClusterName
		}
		so.Cluster = server.ClusterOpts{Name: name, Host: host, Port: cport}
		for _, r := range opts.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("natsembed: start: route %q: %w", r, err)
			}
			so.Routes = append(so.Routes, u)
		}
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsembed: start: %w", err)
	}
	ns.Start()
	s := &Server{ns: ns, clustered: len(so.Routes) > 0}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.waitReady(ctx, false); err != nil {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: start: %w", err)
	}
	return s, nil
}

// waitReady polls until the server accepts clients and JetStream is up.
func (s *Server) waitReady(ctx context.Context, clustered bool) error {
	deadline, _ := ctx.Deadline()
	if !s.ns.ReadyForConnections(time.Until(deadline)) {
		return errors.New("server did not accept connections in time")
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := s.ns.JetStreamEnabled()
		if ready && clustered {
			// Requests fail with "JetStream not available" until the
			// meta group has a leader this server follows.
			ready = s.ns.JetStreamIsClustered() && s.ns.JetStreamIsCurrent()
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("jetstream not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// WaitJetStream waits until JetStream serves requests through this server:
// at once when standalone, once a meta leader is known when clustered.
func (s *Server) WaitJetStream(ctx context.Context) error {
	if err := s.waitReady(ctx, s.clustered); err != nil {
		return fmt.Errorf("natsembed: wait for jetstream: %w", err)
	}
	return nil
}

// URL returns the client URL, nats://host:port.
func (s *Server) URL() string { return s.ns.ClientURL() }

// ClusterURL returns nats-route://host:port for other servers' Routes, or ""
// for a standalone server.
func (s *Server) ClusterURL() string {
	addr := s.ns.ClusterAddr()
	if addr == nil {
		return ""
	}
	return "nats-route://" + net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port))
}

// Shutdown stops the server, closing its clients and routes, and waits until
// it has stopped.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
