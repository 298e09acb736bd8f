package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := mainErr(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

const usage = `usage: switchboard-bench idle|fanout|roundtrip|chat [flags]`

func mainErr(args []string, out io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New(usage)
	}
	cfg := config{Workload: args[0]}
	fs := flag.NewFlagSet("switchboard-bench "+args[0], flag.ContinueOnError)
	rawURL := fs.String("url", "http://127.0.0.1:8080", "gateway base URL (127.0.0.0/8 only)")
	urls := fs.String("urls", "", "comma-separated gateways (a cluster's nodes) clients connect to in turn; admin and REST calls still go to --url (default: --url)")
	adminKey := fs.String("admin-key", "", "admin key of the gateway")
	connString := fs.String("connection-string", "", "connection string: signs client and REST tokens (fanout needs it)")
	hub := fs.String("hub", "bench", "hub to use; created if missing")
	spawnBin := fs.String("spawn", "", "start this switchboard binary with a fresh database instead of using --url")
	sources := fs.Int("sources", 4, "number of 127.0.0.x source addresses to spread connections over")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole run")
	fs.IntVar(&cfg.PID, "pid", 0, "gateway process id, to read its RSS and CPU (default: the spawned one)")
	fs.IntVar(&cfg.Clients, "clients", 100, "client connections (roundtrip: concurrent invokers)")
	fs.IntVar(&cfg.Rate, "rate", 0, "idle: connects/s (0 = as fast as possible); fanout: REST sends/s; chat: invocations/s over all senders")
	fs.IntVar(&cfg.ConnectRate, "connect-rate", 2000, "connects/s while setting up fanout, roundtrip and chat")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "sending time")
	fs.IntVar(&cfg.Senders, "senders", 10, "chat: clients that send")
	fs.DurationVar(&cfg.Hold, "hold", 3*time.Second, "idle: how long connections are held before RSS is read")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "longest wait for in-flight deliveries after sending stops")
	fs.StringVar(&cfg.Protocol, "protocol", "json", "hub protocol of the clients: json, messagepack, or mixed (every other client on MessagePack, in one group)")
	fs.IntVar(&cfg.Users, "users", 0, "give client i the user id bench-user-<i mod N> in its token, so the gateway indexes N users (--users = --clients: a user per client); 0 = no user id")
	fs.StringVar(&cfg.Transport, "transport", "websockets", "transport of the clients: websockets, longpolling or serversentevents (json only)")
	cpuProfile := fs.String("cpuprofile", "", "write the tool's own CPU profile to this file: on a shared machine the tool's cost is the gateway's lost core")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	if *timeout <= 0 || *timeout > 30*time.Minute {
		return errors.New("bench: --timeout must be in (0, 30m]")
	}
	if *sources < 1 || *sources > 250 {
		return errors.New("bench: --sources must be 1..250")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	base := *rawURL
	if *spawnBin != "" {
		gw, err := spawn(ctx, *spawnBin)
		if err != nil {
			return err
		}
		defer gw.stop()
		base, *adminKey, *connString = gw.url, gw.adminKey, gw.connString
		if cfg.PID == 0 {
			cfg.PID = gw.cmd.Process.Pid
		}
	}
	base, err := loopbackBase(base)
	if err != nil {
		return err
	}
	t, err := newTarget(base, *adminKey, *connString, *hub, *sources)
	if err != nil {
		return err
	}
	t.users = cfg.Users
	if *urls != "" {
		if err := t.setClientBases(strings.Split(*urls, ",")); err != nil {
			t.close()
			return err
		}
	}
	defer t.close()
	r, err := run(ctx, t, cfg)
	if err != nil {
		return err
	}
	r.print(out)
	return nil
}

// startCPUProfile profiles the tool into path until the returned func runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// spawned is a gateway the tool started.
type spawned struct {
	cmd                       *exec.Cmd
	dir                       string
	url, adminKey, connString string
}

// spawn runs "bin serve" on a free loopback port with a fresh database and
// reads the keys it prints on first start.
func spawn(ctx context.Context, bin string) (*spawned, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return nil, err
	}
	s := &spawned{dir: dir, url: "http://" + addr}
	// The per-connection invocation rate is off: a closed-loop client on
	// loopback passes the default 200/s, and the tool measures the
	// gateway's work, not its refusals.
	s.cmd = exec.Command(bin, "serve", "--listen", addr, "--public-url", s.url,
		"--db", filepath.Join(dir, "bench.db"), "--log-level", "warn", "--invocation-rate", "-1")
	s.cmd.Stderr = os.Stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: start %s: %w", bin, err)
	}
	ready := make(chan struct{})
	go func() {
		listening, signalled := false, false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if v, ok := strings.CutPrefix(line, "Connection string:"); ok {
				s.connString = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "Admin key:"); ok {
				s.adminKey = strings.TrimSpace(v)
			}
			// Ready with both the keys and "listening", printed once the
			// node serves: after the keys now, before them in builds
			// before 2026-12-03, which A/B runs still spawn.
			listening = listening || strings.HasPrefix(line, "Switchboard listening")
			if listening && s.adminKey != "" && !signalled {
				close(ready)
				signalled = true
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
		return s, nil
	case <-ctx.Done():
	case <-time.After(15 * time.Second):
	}
	s.stop()
	return nil, fmt.Errorf("bench: %s did not print its keys within 15 s", bin)
}

// stop ends the gateway (SIGTERM, then SIGKILL after 15 s) and removes its
// database.
func (s *spawned) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(s.dir)
}
