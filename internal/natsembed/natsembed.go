package natsembed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
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
	routes    []*url.URL // configured, this server's own included
	log       *errorLog
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
	s := &Server{ns: ns, clustered: len(so.Routes) > 0, routes: so.Routes, log: &errorLog{}}
	// The server's own log is silent but for errors, which Start reports:
	// a port in use, say, would otherwise look like a slow start.
	ns.SetLoggerV2(s.log, false, false, false)
	ns.Start()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.waitReady(ctx, false); err != nil {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: start: %w", err)
	}
	return s, nil
}

// waitReady polls until the server accepts clients and JetStream is up,
// and, with clustered, until the JetStream cluster has a meta leader.
func (s *Server) waitReady(ctx context.Context, clustered bool) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.log.fatal(); err != nil {
			return err
		}
		ready := s.ns.ReadyForConnections(10*time.Millisecond) && s.ns.JetStreamEnabled()
		if ready && clustered {
			// JetStream requests go unanswered (not refused) until the
			// meta group has elected a leader, which needs a majority of
			// the cluster's servers; after a restart of the whole cluster
			// that takes several seconds more.
			ready = s.MetaLeader() != ""
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			if clustered && s.ns.JetStreamEnabled() {
				return fmt.Errorf("no JetStream meta leader: %s", s.QuorumReport())
			}
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// MetaLeader is the name of the JetStream cluster's meta leader as this
// server knows it, "" while there is none (or JetStream is not clustered).
func (s *Server) MetaLeader() string {
	z, err := s.ns.Jsz(nil)
	if err != nil || z.Meta == nil {
		return ""
	}
	return z.Meta.Leader
}

// QuorumReport says, for an error message, how many servers of the cluster
// this one is routed to and which configured routes refuse connections,
// which is what keeps a clustered JetStream without a majority.
func (s *Server) QuorumReport() string {
	own := s.ClusterURL()
	var down []string
	others := 0
	for _, r := range s.routes {
		u := "nats-route://" + r.Host
		if u == own {
			continue
		}
		others++
		c, err := net.DialTimeout("tcp", r.Host, time.Second)
		if err != nil {
			down = append(down, r.Host)
			continue
		}
		c.Close()
	}
	msg := fmt.Sprintf("routed to %d of the %d other servers named by the routes; a clustered JetStream needs a majority of its servers running", s.ns.NumRoutes(), others)
	if len(down) > 0 {
		msg += "; nothing listens at " + strings.Join(down, ", ") + ": start those nodes"
	}
	return msg
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

// errorLog keeps the first fatal message of the server: its listen failures
// are logged, not returned. Errors are not kept: a route to a server that
// is not up yet is logged as one, and is no reason to fail.
type errorLog struct {
	mu    sync.Mutex // guards first
	first string
}

func (l *errorLog) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == "" {
		return nil
	}
	return errors.New(l.first)
}

func (l *errorLog) record(format string, v []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == "" {
		l.first = fmt.Sprintf(format, v...)
	}
}

func (l *errorLog) Noticef(string, ...any)         {}
func (l *errorLog) Warnf(string, ...any)           {}
func (l *errorLog) Debugf(string, ...any)          {}
func (l *errorLog) Tracef(string, ...any)          {}
func (l *errorLog) Errorf(string, ...any)          {}
func (l *errorLog) Fatalf(format string, v ...any) { l.record(format, v) }

// Shutdown stops the server, closing its clients and routes, and waits until
// it has stopped.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
