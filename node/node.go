package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/delivery"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
)

// Config configures a node. Zero values are the documented defaults.
type Config struct {
	// Listen is the TCP address to serve on. Empty means ":8080".
	Listen string
	// DBPath is the bbolt file. Empty means "switchboard.db".
	DBPath string
	// PublicURL is the base URL clients and servers reach this node at.
	// Empty means http://localhost:PORT of the listener.
	PublicURL string
	// AllowedOrigins for hubs that set none. Empty allows any origin but
	// null.
	AllowedOrigins []string
	// ClientLimits caps connections per user and per source address and
	// rates negotiate and connect requests per source address; zero fields
	// mean the defaults (see httpapi.ClientLimits). The caps count this
	// node's connections.
	ClientLimits httpapi.ClientLimits
	// LongPolling times the Long Polling transport: how long a poll waits
	// for messages and when a client that stopped polling is gone; zero
	// fields mean the defaults (see httpapi.LongPolling).
	LongPolling httpapi.LongPolling
	// StatefulReconnectWindow is how long a stateful connection (a client
	// that asked for stateful reconnect) may be without a socket before it
	// ends; StatefulReconnectBuffer bounds, in bytes, what it keeps for a
	// replay. Zero means the gateway's defaults (30 s, 100,000 bytes, as
	// ASP.NET Core SignalR).
	StatefulReconnectWindow time.Duration
	StatefulReconnectBuffer int
	// NodeID prefixes connection ids. Empty means random.
	NodeID string
	// KeysCreated, when set, is called during Start if this start generated
	// the keys (the first start of a new store or cluster), as soon as they
	// are stored and before the steps of Start that may still fail: the
	// admin key is kept only as a hash, so a start that failed after making
	// it and printed nothing would lose it. adminKey is "" on a node of a
	// cluster whose admin key lost the race to another node's.
	KeysCreated func(cs negotiate.ConnectionString, adminKey string)
	// Gateway timing; zero means the gateway's defaults.
	PingInterval, ClientTimeout time.Duration
	// HandshakeTimeout bounds the wait for a new socket's SignalR
	// handshake; a client silent that long is closed with 1002. Zero means
	// 15 s.
	HandshakeTimeout time.Duration
	// IdleHandoff is how long a WebSocket may send nothing before its wait
	// moves to a goroutine with a smaller stack (gateway.Config's); zero
	// means 2 s, negative never.
	IdleHandoff time.Duration
	// HTTP bounds how long a client may hold the HTTP server with a
	// request or an idle connection; zero fields mean the defaults.
	HTTP HTTPTimeouts
	// Limits bound what one connection may ask (invocations in flight,
	// queued and per second, groups); zero fields mean the gateway's
	// defaults.
	Limits gateway.Limits
	// ShutdownTimeout bounds Close. Zero means 10 s.
	ShutdownTimeout time.Duration
	// NATS joins a cluster through the NATS server at this URL: config is
	// shared in JetStream KV and fan-out crosses nodes. Empty means a single
	// node, unless NATSEmbedded is set.
	NATS string
	// NATSEmbedded starts a NATS server (with JetStream) inside this
	// process and joins through it; its Routes may name other nodes'
	// embedded servers to form a NATS cluster. For development.
	NATSEmbedded *natsembed.Options
	// NATSBuffer bounds what is buffered for other nodes while NATS is
	// unreachable, in bytes. Zero means 8 MiB.
	NATSBuffer int
	// KVReplicas is how many JetStream servers keep each bucket of the
	// shared configuration and the connection registry (1 to 5, at most
	// the NATS cluster's size). With 1 the buckets live on one server and
	// the cluster cannot change its configuration while that server is
	// down; 3 keeps them through the loss of any one. Zero means 1.
	KVReplicas int
	// JoinTimeout bounds how long a clustered node waits at start for NATS
	// and for JetStream to serve the shared configuration: after a whole
	// cluster restarts, JetStream has no leader until a majority of its
	// servers run, and its buckets answer some seconds after that. Zero
	// means 1 min.
	JoinTimeout time.Duration
	// Delivery tunes the upstream dispatcher (outbox size and TTL, retry
	// backoff, circuit breakers); zero fields mean its defaults. Store,
	// OnReply, OnDisable, Origin and Logger are set by the node.
	Delivery delivery.DispatcherConfig
	// MaxTokenLifetime bounds client and REST tokens: the verifier refuses
	// a token whose exp lies further ahead, and :generateToken issues none
	// longer. Zero means negotiate.DefaultMaxLifetime (24 h).
	MaxTokenLifetime time.Duration
	// MaxActions is the most actions one webhook reply or one REST
	// :actions batch may carry. Zero means actions.DefaultMaxActions (100);
	// Delivery.MaxReplyActions, when set, overrides it for replies.
	MaxActions int
	// PurgeInterval is how often expired user-group memberships are
	// deleted from the store (by one node of a cluster). Zero means 5 min.
	PurgeInterval time.Duration
	// Secrets seals access key secrets and upstream signing secrets at
	// rest (in the bbolt file, or in NATS KV in a cluster) with
	// Secrets.Current, and opens those sealed with it or with Secrets.Old.
	// At start the node reseals every stored secret not sealed with the
	// current key (see store.Config.Reseal), which is how a key is
	// rotated. Zero keeps secrets in clear. The admin key is kept as a
	// hash either way.
	Secrets store.SecretsKeys
	// TLS serves HTTPS and WSS, and verifies upstreams and NATS; the zero
	// value is plain HTTP (see TLS).
	TLS TLS
	// TrustedProxies are the addresses of TLS-terminating proxies in front
	// of the node: only requests from them have their Forwarded and
	// X-Forwarded-* headers honoured (see httpapi.Config.TrustedProxies).
	// Empty means none.
	TrustedProxies []netip.Prefix
	// TrustedProxyHeaders is the family of forwarding headers the trusted
	// proxies write (httpapi.Config.ProxyHeaders); zero means X-Forwarded-*.
	TrustedProxyHeaders httpapi.ProxyHeaders
	// Admin serves the admin API on a listener of its own, optionally with
	// mutual TLS; the zero value keeps it on the main listener.
	Admin AdminListener
	// TracerProvider makes the spans of negotiate and REST requests,
	// connects, invocations and webhook attempts (see docs/tracing.md).
	// Nil means no spans; W3C trace context from clients is still carried
	// into webhooks.
	TracerProvider trace.TracerProvider
	// Identities lets REST and admin callers authenticate with tokens of
	// trusted OpenID Connect issuers (see httpapi.Config.Identities). Nil
	// means access keys and the admin key only.
	Identities httpapi.Identities
	// MetricsListen, when set, serves GET /metrics on this TCP address too,
	// without the admin key, for a Prometheus that should not hold it.
	// /metrics on Listen always needs the admin key. Empty means none.
	MetricsListen string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Node is a running gateway node.
type Node struct {
	cfg Config
	log *slog.Logger
	// db is the node's own bbolt file: the outbox always, and the
	// configuration on a single node.
	db *store.DB
	// store is where hubs, upstreams, keys and user groups live: db, or
	// NATS KV in a cluster; config is the node's copy of it in memory,
	// which everything else reads.
	store      store.Config
	config     *configView
	verifier   *negotiate.Verifier
	cl         *clustering // nil on a single node
	stopWatch  context.CancelFunc
	watchDone  chan struct{} // closed when watchConfig and purgeUserGroups returned
	purged     atomic.Int64  // expired user-group memberships purged
	gw         *gateway.Gateway
	dispatcher *delivery.Dispatcher
	api        *httpapi.Server
	srv        *http.Server
	ln         net.Listener
	serveErr   chan error
	admin      *adminServer // nil without a separate admin listener
	acme       *acmeCache   // nil without ACME
	metrics    nodeMetrics

	// KeysCreated reports that this start generated the access and admin
	// keys (first start of a new store).
	KeysCreated bool
	adminKey    string
}

// Start opens the store (creating keys on first start), starts the gateway
// and serves HTTP until Close.
func Start(cfg Config) (*Node, error) {
	if cfg.Listen == "" {
		cfg.Listen = ":8080"
	}
	if cfg.DBPath == "" {
		cfg.DBPath = "switchboard.db"
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = time.Minute
	}
	if cfg.PurgeInterval <= 0 {
		cfg.PurgeInterval = 5 * time.Minute
	}
	if cfg.Delivery.MaxReplyActions <= 0 {
		cfg.Delivery.MaxReplyActions = cfg.MaxActions
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, log: cfg.Logger, serveErr: make(chan error, 1)}

	// The listener comes first: a node that cannot serve must fail before
	// it generates keys nobody would see printed.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: listen on %s: %w", cfg.Listen, err)
	}
	n.ln = ln
	tlsConfig, err := n.serverTLS()
	if err == nil {
		n.admin, err = n.listenAdmin(tlsConfig)
	}
	if err == nil {
		err = n.listenMetrics()
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	db, err := store.Open(cfg.DBPath, store.WithSecrets(cfg.Secrets))
	if err != nil {
		ln.Close()
		return nil, err
	}
	n.db, n.store = db, db
	if cfg.NATS != "" || cfg.NATSEmbedded != nil {
		if n.cfg.NodeID == "" {
			n.cfg.NodeID = newNodeID()
		}
		if n.cl, err = joinCluster(n.cfg); err != nil {
			n.abort()
			return nil, err
		}
		n.store = n.cl.kv
	}
	startCtx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := n.reseal(startCtx); err != nil {
		n.abort()
		return nil, err
	}
	if err := n.shareACMECache(startCtx); err != nil {
		n.abort()
		return nil, err
	}
	if n.cfg.PublicURL == "" {
		n.cfg.PublicURL = cfg.TLS.defaultPublicURL(ln.Addr().(*net.TCPAddr).Port)
	}
	n.cfg.PublicURL = strings.TrimRight(n.cfg.PublicURL, "/")
	access, admin, created, err := n.store.EnsureKeys(startCtx, func() store.Key { return store.NewKey(time.Now()) }, NewAdminKey)
	if err != nil {
		n.abort()
		return nil, fmt.Errorf("node: keys: %w", err)
	}
	n.KeysCreated, n.adminKey = created, admin
	if created && cfg.KeysCreated != nil {
		cfg.KeysCreated(connectionString(n.cfg.PublicURL, access), admin)
	}
	n.config = newConfigView(n.store)
	if err := n.config.load(startCtx); err != nil {
		n.abort()
		return nil, fmt.Errorf("node: load the configuration: %w", err)
	}
	keys, _ := n.config.AccessKeys(startCtx)
	n.verifier = negotiate.NewVerifier(store.AccessKeys(keys), negotiate.WithMaxLifetime(cfg.MaxTokenLifetime))

	if n.dispatcher, err = n.newDispatcher(); err != nil {
		n.abort()
		return nil, err
	}
	gc := gateway.Config{
		NodeID:           n.cfg.NodeID,
		PingInterval:     cfg.PingInterval,
		ClientTimeout:    cfg.ClientTimeout,
		HandshakeTimeout: cfg.HandshakeTimeout,
		IdleHandoff:      cfg.IdleHandoff,
		Limits:           cfg.Limits,

		StatefulReconnectWindow: cfg.StatefulReconnectWindow,
		StatefulReconnectBuffer: cfg.StatefulReconnectBuffer,
		Webhooks:                n.dispatcher,
		UserGroups:              n.config,
		TracerProvider:          cfg.TracerProvider,
		Logger:                  cfg.Logger,
	}
	if n.cl == nil {
		n.gw = gateway.New(gc) // the only node: the gateway's own bus
	} else if err := n.cl.start(n, &gc); err != nil {
		n.abort()
		return nil, err
	}
	// Upstreams are loaded once the gateway exists: replayed notifications
	// start flowing then, and their replies' actions need the gateway.
	n.reloadUpstreams()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	n.stopWatch, n.watchDone = stopWatch, make(chan struct{})
	go func() {
		defer close(n.watchDone)
		var wg sync.WaitGroup
		wg.Go(func() { n.purgeUserGroups(watchCtx) })
		n.watchConfig(watchCtx)
		wg.Wait()
	}()
	api := httpapi.Config{
		Gateway:          n.gw,
		Store:            n.config,
		Verifier:         n.verifier,
		Identities:       cfg.Identities,
		UpstreamsChanged: n.reloadUpstreams,
		Deliveries:       n.dispatcher,
		PublicURL:        n.cfg.PublicURL,
		AllowedOrigins:   cfg.AllowedOrigins,
		MaxActions:       cfg.MaxActions,
		MaxTokenLifetime: cfg.MaxTokenLifetime,
		Limits:           cfg.ClientLimits,
		LongPolling:      cfg.LongPolling,
		TrustedProxies:   cfg.TrustedProxies,
		ProxyHeaders:     cfg.TrustedProxyHeaders,
		SeparateAdmin:    n.admin != nil,
		TracerProvider:   cfg.TracerProvider,
		Logger:           cfg.Logger,
		Metrics:          n.metrics.m.Handler(),
	}
	api.Readiness = n.readiness
	api.NodeStatus = func() map[string]any { return map[string]any{"userGroupsPurged": n.purged.Load()} }
	if n.cl != nil {
		api.LiveNodes = n.cl.liveNodes
		api.Cluster = func() httpapi.ClusterView { return n.cl.clusterView(n.cfg.NodeID) }
		api.NodeURL = func(id string) (string, bool) {
			for _, m := range n.cl.bus.Members() {
				if m.ID == id && m.URL != "" {
					return m.URL, true
				}
			}
			return "", false
		}
	}
	n.api = httpapi.New(api)
	n.serveMetrics()
	n.srv = n.cfg.HTTP.server(n.api)
	n.srv.TLSConfig, n.srv.ErrorLog = tlsConfig, httpErrorLog(n.log)
	n.srv.RegisterOnShutdown(n.api.StopPolling)
	go func() { n.serveErr <- serve(n.srv, ln) }()
	if n.admin != nil {
		n.admin.start(n, n.api.AdminHandler())
	}
	return n, nil
}

// HTTPTimeouts bound what a client may hold of the HTTP server. None of
// them applies to a WebSocket once it is upgraded: net/http clears a
// connection's deadlines when it is hijacked, and from then on the gateway's
// pings and client timeout keep the socket honest. Zero fields mean the
// defaults.
type HTTPTimeouts struct {
	// ReadHeader bounds reading a request's headers. Zero means 10 s.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included, so a client that
	// trickles a body is cut off. Zero means 30 s.
	Read time.Duration
	// Write bounds writing a response, from the end of the request's
	// headers. Zero means 30 s (admin and REST requests are bounded by
	// 10 s on their own).
	Write time.Duration
	// Idle bounds how long a keep-alive connection waits for its next
	// request. Zero means 2 min.
	Idle time.Duration
}

// server is an http.Server serving h with t's timeouts.
func (t HTTPTimeouts) server(h http.Handler) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: or(t.ReadHeader, 10*time.Second),
		ReadTimeout:       or(t.Read, 30*time.Second),
		WriteTimeout:      or(t.Write, 30*time.Second),
		IdleTimeout:       or(t.Idle, 2*time.Minute),
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// MaxHeaderBytes bounds a request's line and headers, which every client
// sends before anything is checked. net/http's default is 1 MiB; real
// clients send a few KiB (a 4 KiB token at most, or 16 KiB from an OIDC
// issuer), and a proxy in front usually allows 8 to 32 KiB.
const MaxHeaderBytes = 64 << 10

// abort releases what Start acquired before it failed.
func (n *Node) abort() {
	if n.dispatcher != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = n.dispatcher.Close(ctx)
		cancel()
	}
	if n.ln != nil {
		n.ln.Close()
	}
	_ = n.admin.close(context.Background())
	n.closeMetrics(context.Background())
	if n.cl != nil {
		n.cl.close(context.Background())
	}
	n.db.Close()
}

// reloadUpstreams hands the upstreams of the node's configuration to the
// dispatcher.
func (n *Node) reloadUpstreams() {
	ups := n.config.AllUpstreams()
	targets := make([]delivery.Target, 0, len(ups))
	for _, u := range ups {
		f, err := delivery.ParseFilter(u.Events)
		if err != nil {
			n.log.Error("stored upstream has a bad event filter; skipped", "hub", u.Hub, "upstream", u.Name, "err", err)
			continue
		}
		az, err := n.azureUpstream(u)
		if err != nil {
			n.log.Error("stored upstream has bad azure-signalr rules; skipped", "hub", u.Hub, "upstream", u.Name, "err", err)
			continue
		}
		targets = append(targets, delivery.Target{Hub: u.Hub, Name: u.Name, URLTemplate: u.URLTemplate,
			Filter: f, Azure: az, Timeout: time.Duration(u.Timeout), Secrets: u.Secrets,
			Disabled: u.Disabled, DisabledReason: u.DisabledReason, OAuth2: clientCredentials(u.OAuth2)})
	}
	n.dispatcher.SetTargets(targets)
	n.metrics.upstreamsLoaded(targets)
}

// ReloadConfig reads the whole configuration from the store again and
// applies it; call it after changing the store directly (tests do).
func (n *Node) ReloadConfig(ctx context.Context) error {
	if err := n.config.load(ctx); err != nil {
		return err
	}
	n.reloadUpstreams()
	n.reloadKeys()
	return nil
}

// URL is the node's public base URL.
func (n *Node) URL() string { return n.cfg.PublicURL }

// Addr is the address the node listens on.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// AdminKey is the key of the admin API when this start created it (it is
// shown once), else "": the store keeps only its hash.
func (n *Node) AdminKey() string { return n.adminKey }

// reseal brings the stored secrets to the form n.cfg.Secrets asks for:
// sealed with the current key, or in clear without one.
func (n *Node) reseal(ctx context.Context) error {
	count, err := n.store.Reseal(ctx)
	if err != nil {
		return fmt.Errorf("node: secrets at rest: %w", err)
	}
	if count > 0 {
		how := "in clear (no secrets key)"
		if n.cfg.Secrets.Current != nil {
			how = "with secrets key " + n.cfg.Secrets.Current.ID()
		}
		n.log.Info("stored secrets rewritten "+how, "records", count)
	}
	return nil
}

// Store is where the node's configuration lives (its bbolt file, or the
// cluster's KV), for wiring examples and tests; after writing to it
// directly, call ReloadConfig.
func (n *Node) Store() store.Config { return n.store }

// Gateway is the node's gateway.
func (n *Node) Gateway() *gateway.Gateway { return n.gw }

// ConnectionString is the Azure-style connection string of the newest
// access key.
func (n *Node) ConnectionString() (negotiate.ConnectionString, error) {
	keys, err := n.config.AccessKeys(context.Background())
	if err != nil {
		return negotiate.ConnectionString{}, err
	}
	return connectionString(n.cfg.PublicURL, keys), nil
}

// connectionString is the connection string of a node at publicURL with
// its newest access key first in keys.
func connectionString(publicURL string, keys []store.Key) negotiate.ConnectionString {
	return negotiate.ConnectionString{Endpoint: publicURL, AccessKey: keys[0].Secret, KeyID: keys[0].ID, Version: "1.0"}
}

// Done receives the HTTP server's error if it stops on its own.
func (n *Node) Done() <-chan error { return n.serveErr }

// Close stops accepting requests, tells clients to reconnect (their
// disconnected events go to the outbox), delivers the queued notifications
// it can within the shutdown timeout, keeps the rest on disk and closes the
// store.
func (n *Node) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	// Shutdown of the HTTP server waits for handlers, and WebSocket handlers
	// run until their connection ends, so the gateway closes those first.
	shutdownHTTP := make(chan error, 1)
	go func() { shutdownHTTP <- n.srv.Shutdown(ctx) }()
	if err := n.gw.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := <-shutdownHTTP; err != nil {
		errs = append(errs, fmt.Errorf("node: http shutdown: %w", err))
	}
	if err := n.admin.close(ctx); err != nil {
		errs = append(errs, err)
	}
	n.closeMetrics(ctx)
	n.stopWatch()
	<-n.watchDone
	if n.cl != nil {
		// The registry goes before the bus and the dispatcher: it must see
		// every connection closed before it drops this node's record.
		if err := n.cl.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.dispatcher.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := n.db.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// startTimeout bounds what Start reads from and writes to the store.
const startTimeout = 30 * time.Second

// NewAdminKey returns a fresh admin key: "sbadm_" and 24 random bytes.
func NewAdminKey() string {
	var b [24]byte
	rand.Read(b[:]) // crypto/rand never fails: it crashes the program instead (Go 1.24+)
	return "sbadm_" + base64.RawURLEncoding.EncodeToString(b[:])
}
