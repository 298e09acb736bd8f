package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/httpapi"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/gctune"
	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/node"
)

type serveFlags struct {
	listen, db, publicURL, nodeID, logLevel string
	origins                                 []string
	delivery                                delivery.DispatcherConfig
	limits                                  gateway.Limits

	natsURL                   string
	natsEmbedded              bool
	natsPort, natsClusterPort int
	natsRoutes                []string
	natsStore, natsName       string
	natsBuffer                int
	kvReplicas                int

	maxTokenLifetime time.Duration
	maxActions       int
	longPolling      httpapi.LongPolling
	statefulWindow   time.Duration
	statefulBuffer   int

	pprof string
	// gcHeadroomMiB is the heap the garbage collector may grow by before
	// it collects, when the live heap is smaller than that (gctune).
	gcHeadroomMiB int
	// idleHandoff is node.Config.IdleHandoff: when a quiet WebSocket's
	// wait moves to a small stack.
	idleHandoff time.Duration

	edge     edgeFlags
	identity identityFlags
	natsHost embeddedNATSHost
	observe  observeFlags
	settings configFlags
	tls      tlsFlags
}

func (f *serveFlags) register(cmd *cobra.Command, listenDefault, dbDefault string) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", listenDefault, "address to serve HTTP on")
	fl.StringVar(&f.db, "db", dbDefault, "bbolt file holding hubs, upstreams and keys")
	fl.StringVar(&f.publicURL, "public-url", "", "base URL clients reach this node at (default http://localhost:PORT)")
	fl.StringVar(&f.nodeID, "node-id", "", "prefix of this node's connection ids (default random)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringSliceVar(&f.origins, "allowed-origin", nil, "origin allowed for browsers on hubs that set none (repeatable; default any)")
	envAlias(fl, "allowed-origin", "SWITCHBOARD_ALLOWED_ORIGINS") // the name documented first
	fl.StringVar(&f.pprof, "pprof", "", "serve Go's pprof profiles on this address, e.g. 127.0.0.1:6060 (default off; never expose it publicly)")
	fl.IntVar(&f.gcHeadroomMiB, "gc-headroom-mib", 16, "MiB the heap may grow past its live size before the garbage collector runs, where Go's default allows less (a small live heap): fewer collections for this much memory at most; 0 keeps Go's default, as does GOGC set in the environment")
	fl.DurationVar(&f.idleHandoff, "idle-handoff", 0, "how long a WebSocket may send nothing before its wait moves to a goroutine with a 2 KiB stack, about 2 KiB less per idle connection (default 2s; a negative value such as -1s never moves it, for a little less CPU per connect)")
	fl.StringVar(&f.natsURL, "nats", "", "join a cluster through NATS at this URL, or a comma-separated list of the NATS cluster's servers (nats://a:4222,nats://b:4222); config is then shared in JetStream KV")
	fl.BoolVar(&f.natsEmbedded, "nats-embedded", false, "start a NATS server (JetStream on) inside this process and join through it, for development")
	fl.IntVar(&f.natsPort, "nats-port", 0, "client port of the embedded NATS server (default random)")
	fl.IntVar(&f.natsClusterPort, "nats-cluster-port", 0, "route port of the embedded NATS server, to cluster it with other nodes' (needs --nats-route)")
	fl.StringSliceVar(&f.natsRoutes, "nats-route", nil, "route URL of another node's embedded NATS server, nats-route://host:port (repeatable)")
	fl.StringVar(&f.natsStore, "nats-store", "", "JetStream directory of the embedded NATS server (default next to --db)")
	fl.StringVar(&f.natsName, "nats-name", "", "server name of the embedded NATS server (default from --node-id or random)")
	fl.IntVar(&f.natsBuffer, "nats-buffer", 0, "bytes buffered for other nodes while NATS is unreachable, then dropped and counted (default 8 MiB)")
	fl.IntVar(&f.kvReplicas, "kv-replicas", 1, "JetStream servers that keep each bucket of the shared config and connection registry (1-5, at most the NATS cluster's size); 3 survives the loss of any one server")
	l := &f.limits
	fl.IntVar(&l.MaxInflightInvocations, "max-inflight-invocations", 0, "invocations of one connection waiting on upstreams at once; more queue, in order (default 1, as ASP.NET Core SignalR)")
	fl.IntVar(&l.MaxQueuedInvocations, "max-queued-invocations", 0, "invocations of one connection queued behind those in flight; one more gets a completion error, or is dropped if a send (default 32; -1 for none)")
	fl.Float64Var(&l.InvocationRate, "invocation-rate", 0, "invocations per second one connection may make; more get a completion error or are dropped, and a client sending over twice that is closed (default 200; -1 for no limit)")
	fl.IntVar(&l.InvocationBurst, "invocation-burst", 0, "invocations one connection may make at once before --invocation-rate applies (default one second's worth)")
	fl.IntVar(&l.MaxGroupsPerConnection, "max-groups-per-connection", 0, "groups one connection may be in; joins beyond fail with an error (default 1000; -1 for no limit)")
	d := &f.delivery
	fl.IntVar(&d.OutboxLimit, "outbox-limit", 0, "undelivered notifications kept before the oldest are dropped (default 100000)")
	fl.Int64Var(&d.OutboxLimitBytes, "outbox-limit-bytes", 0, "bytes of undelivered notifications (each counts its event and its client's query and claims) kept before the oldest are dropped (default 268435456, 256 MiB)")
	fl.DurationVar(&d.OutboxTTL, "outbox-ttl", 0, "how long a notification is retried (default 24h)")
	fl.DurationVar(&d.MinRetry, "retry-min", 0, "first retry delay of a notification, doubling each time (default 1s)")
	fl.DurationVar(&d.MaxRetry, "retry-max", 0, "longest retry delay of a notification (default 5m)")
	fl.Uint32Var(&d.Breaker.ConsecutiveFailures, "breaker-failures", 0, "consecutive failures that open an upstream's circuit breaker (default 5)")
	fl.DurationVar(&d.Breaker.CoolDown, "breaker-cooldown", 0, "how long an open breaker waits before a probe (default 10s)")
	fl.DurationVar(&f.maxTokenLifetime, "max-token-lifetime", 0, "longest a client or REST token may still be valid when presented, and the most :generateToken issues (default 24h)")
	fl.IntVar(&f.maxActions, "max-actions", 0, "most actions one webhook reply or one REST :actions batch may carry (default 100)")
	fl.DurationVar(&f.longPolling.PollWait, "long-polling-wait", 0, "how long a Long Polling poll waits for messages before it is answered empty (default 90s; keep it under proxies' idle timeouts)")
	fl.DurationVar(&f.longPolling.IdleTimeout, "long-polling-idle", 0, "a Long Polling client that has no poll waiting this long is gone (default 15s)")
	fl.DurationVar(&f.statefulWindow, "stateful-reconnect-window", 0, "how long a client with stateful reconnect may be without a socket and still resume, losing nothing (default 30s)")
	fl.IntVar(&f.statefulBuffer, "stateful-reconnect-buffer", 0, "bytes sent to a stateful-reconnect client and not yet acknowledged that are kept for a replay; a client that lets more pile up is closed (default 100000, as ASP.NET Core)")
	f.edge.register(fl)
	f.identity.register(fl)
	f.natsHost.register(fl)
	f.tls.register(fl)
	f.observe.register(fl)
	f.settings.register(cmd) // last: environment and --config file under every flag above
}

func (f *serveFlags) config() (node.Config, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return node.Config{}, fmt.Errorf("--log-level %q: use debug, info, warn or error", f.logLevel)
	}
	cfg := node.Config{Listen: f.listen, DBPath: f.db, PublicURL: f.publicURL, NodeID: f.nodeID,
		AllowedOrigins: f.origins, Delivery: f.delivery, Limits: f.limits, NATS: f.natsURL, NATSBuffer: f.natsBuffer, KVReplicas: f.kvReplicas,
		MaxTokenLifetime: f.maxTokenLifetime, MaxActions: f.maxActions, LongPolling: f.longPolling,
		StatefulReconnectWindow: f.statefulWindow, StatefulReconnectBuffer: f.statefulBuffer, IdleHandoff: f.idleHandoff}
	switch {
	case f.maxTokenLifetime < 0:
		return node.Config{}, fmt.Errorf("--max-token-lifetime %s: give a positive duration such as 24h", f.maxTokenLifetime)
	case f.statefulWindow < 0 || f.statefulBuffer < 0:
		return node.Config{}, fmt.Errorf("--stateful-reconnect-window and --stateful-reconnect-buffer: give positive values")
	case f.maxActions < 0:
		return node.Config{}, fmt.Errorf("--max-actions %d: give a positive number", f.maxActions)
	case f.gcHeadroomMiB < 0 || f.gcHeadroomMiB > 1<<20:
		return node.Config{}, fmt.Errorf("--gc-headroom-mib %d: give 0 (off) to 1048576", f.gcHeadroomMiB)
	case f.kvReplicas < 1 || f.kvReplicas > 5:
		return node.Config{}, fmt.Errorf("--kv-replicas %d: use 1 to 5 (JetStream's limit), at most the number of NATS servers", f.kvReplicas)
	case f.natsEmbedded && f.natsURL != "":
		return node.Config{}, fmt.Errorf("--nats and --nats-embedded exclude each other: join an existing NATS or start one")
	case f.natsEmbedded:
		storeDir := f.natsStore
		if storeDir == "" {
			storeDir = f.db + ".nats"
		}
		port := f.natsPort
		if port == 0 {
			port = natsembed.RandomPort
		}
		// Clustered JetStream needs a server name that survives restarts.
		cfg.NATSEmbedded = &natsembed.Options{Name: cmp.Or(f.natsName, f.nodeID), Port: port, StoreDir: storeDir,
			ClusterPort: f.natsClusterPort, Routes: f.natsRoutes}
	case f.natsPort != 0 || f.natsClusterPort != 0 || len(f.natsRoutes) > 0 || f.natsStore != "":
		return node.Config{}, fmt.Errorf("--nats-port, --nats-cluster-port, --nats-route and --nats-store configure the embedded server: add --nats-embedded")
	}
	if err := f.edge.apply(&cfg); err != nil {
		return node.Config{}, err
	}
	if err := f.identity.apply(&cfg); err != nil {
		return node.Config{}, err
	}
	if err := f.natsHost.apply(&cfg); err != nil {
		return node.Config{}, err
	}
	if err := f.observe.apply(&cfg, level); err != nil {
		return node.Config{}, err
	}
	if err := f.tls.apply(&cfg, f.natsEmbedded); err != nil {
		return node.Config{}, err
	}
	return cfg, nil
}

func serveCmd() *cobra.Command {
	cmd, _ := newServeCmd()
	return cmd
}

// newServeCmd returns serve and the settings its flags fill (config check
// validates files against them).
func newServeCmd() (*cobra.Command, *serveFlags) {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a gateway node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			slog.SetDefault(cfg.Logger) // the few lines logged outside the node keep its format
			if err := startPprof(f.pprof); err != nil {
				return err
			}
			defer gctune.Start(uint64(f.gcHeadroomMiB) << 20).Stop()
			stopTracing, err := setupTracing(&cfg, os.Getenv)
			if err != nil {
				return err
			}
			defer stopTracing()
			out := cmd.OutOrStdout()
			cfg.KeysCreated = func(cs negotiate.ConnectionString, adminKey string) { announceKeys(out, cs, adminKey) }
			n, err := node.Start(cfg)
			if err != nil {
				return explainSecrets(err)
			}
			fmt.Fprintf(out, "Switchboard listening on %s (%s)\n", n.Addr(), n.URL())
			return runUntilSignal(n)
		},
	}
	f.register(cmd, ":8080", "switchboard.db")
	return cmd, &f
}

// announceKeys prints, on a node's first start only, the secrets an
// operator needs: they are shown once and never logged (the store keeps the
// admin key as a hash). The node calls it as soon as the keys are stored,
// so a start that fails later has shown them; lost, they are recovered with
// switchboard recover.
func announceKeys(w io.Writer, cs negotiate.ConnectionString, adminKey string) {
	fmt.Fprintf(w, "First start: keys generated and stored. Keep these secret.\n")
	fmt.Fprintf(w, "  Connection string: %s\n", cs)
	if adminKey != "" { // "" on the node of a cluster whose admin key lost the race to another's
		fmt.Fprintf(w, "  Admin key:         %s\n", adminKey)
	}
}

// runUntilSignal serves until SIGINT or SIGTERM, then shuts the node down.
func runUntilSignal(n *node.Node) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-n.Done():
		_ = n.Close()
		return err
	}
	return n.Close()
}

// startPprof serves net/http/pprof's handlers on addr, apart from the API so
// profiles are never reachable through the public listener.
func startPprof(addr string) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return nil
}
