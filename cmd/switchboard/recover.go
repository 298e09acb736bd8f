package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/store"
)

// localStore opens the configuration a stopped node keeps: its bbolt file,
// or, with --nats, the cluster's NATS KV (which the nodes may be using).
type localStore struct {
	db, natsURL string
	secrets     secretsFlags
}

func (l *localStore) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&l.db, "db", "switchboard.db", "bbolt file of the stopped node")
	fl.StringVar(&l.natsURL, "nats", "", "work on a cluster's configuration in NATS JetStream KV at this URL instead of a bbolt file (the nodes may be running)")
	l.secrets.register(fl)
}

// open opens the store and returns it with a function that closes it.
// run makes a recover command's RunE: fn works on the opened store, bounded
// in time, and the store is closed after it.
func (l *localStore) run(fn func(ctx context.Context, c store.Config, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, closeStore, err := l.open(ctx)
		if err != nil {
			return err
		}
		defer closeStore()
		return fn(ctx, c, cmd)
	}
}

func (l *localStore) open(ctx context.Context) (store.Config, func(), error) {
	keys, err := l.secrets.keys()
	if err != nil {
		return nil, nil, err
	}
	if l.natsURL != "" {
		nc, err := nats.Connect(l.natsURL, nats.Timeout(10*time.Second))
		if err != nil {
			return nil, nil, fmt.Errorf("connect to NATS at --nats: %w", err)
		}
		js, err := jetstream.New(nc)
		if err == nil {
			var kv *store.KV
			kv, err = store.BindKV(ctx, js, store.WithKVSecrets(keys))
			if err == nil {
				return kv, nc.Close, nil
			}
		}
		nc.Close()
		return nil, nil, err
	}
	if _, err := os.Stat(l.db); err != nil {
		return nil, nil, fmt.Errorf("no database at %s (--db): %w", l.db, err)
	}
	db, err := store.Open(l.db, store.WithSecrets(keys))
	if errors.Is(err, store.ErrInUse) {
		return nil, nil, fmt.Errorf("%w.\nA running node holds it (bbolt lets one process open the file): stop the node and run this again, "+
			"or, while it runs, use its admin API (switchboard keys …, with the admin key)", err)
	}
	if err != nil {
		return nil, nil, err
	}
	return db, func() { _ = db.Close() }, nil
}

// noKeys explains a store without keys.
func (l *localStore) noKeys() error {
	if l.natsURL != "" {
		return errors.New("the cluster has no keys yet: they are made when the first node starts (switchboard serve --nats …), which prints them")
	}
	return fmt.Errorf("%s holds no keys: either its node never started (the first `switchboard serve` makes the keys and prints them), "+
		"or the node is clustered and its keys live in NATS KV (add --nats URL)", l.db)
}

func recoverCmd() *cobra.Command {
	var l localStore
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Recover access from a stopped node's database file (or a cluster's NATS KV): the connection string, a new admin key",
		Long: "Work on the configuration directly, not through a running gateway: for when the keys printed at the first start are lost.\n" +
			"A bbolt file can be opened by one process only, so stop the node first.",
	}
	l.register(cmd)
	envFlags(cmd) // SWITCHBOARD_DB, SWITCHBOARD_NATS, … as for serve
	var publicURL string
	cs := &cobra.Command{
		Use:   "connection-string",
		Short: "Print the connection string of the newest access key",
		Example: "  switchboard recover connection-string --db switchboard.db --public-url https://gw.example.com\n" +
			"  export SWITCHBOARD_CONNECTION_STRING=$(switchboard recover connection-string --public-url http://127.0.0.1:8080)",
		Args: cobra.NoArgs,
		RunE: l.run(func(ctx context.Context, c store.Config, cmd *cobra.Command) error {
			keys, err := c.AccessKeys(ctx)
			if errors.Is(err, store.ErrNotFound) || err == nil && len(keys) == 0 {
				return l.noKeys()
			}
			if err != nil {
				return explainSecrets(err)
			}
			conn := negotiate.ConnectionString{Endpoint: strings.TrimRight(publicURL, "/"), AccessKey: keys[0].Secret, KeyID: keys[0].ID, Version: "1.0"}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), conn.String())
			return err
		}),
	}
	cs.Flags().StringVar(&publicURL, "public-url", "http://localhost:8080",
		"the gateway's base URL, the connection string's Endpoint (as serve's --public-url)")
	reset := &cobra.Command{
		Use:   "reset-admin-key",
		Short: "Replace the admin key with a new one and print it; the previous one stops working",
		Example: "  switchboard recover reset-admin-key --db switchboard.db\n" +
			"  export SWITCHBOARD_ADMIN_KEY=$(switchboard recover reset-admin-key)",
		Args: cobra.NoArgs,
		RunE: l.run(func(ctx context.Context, c store.Config, cmd *cobra.Command) error {
			if _, err := c.AdminKeyHash(ctx); errors.Is(err, store.ErrNotFound) {
				return l.noKeys()
			} else if err != nil {
				return err
			}
			key := node.NewAdminKey()
			if err := c.SetAdminKey(ctx, key); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Admin key reset; the previous one no longer works. Keep this one secret: it is shown once.")
			_, err := fmt.Fprintln(cmd.OutOrStdout(), key)
			return err
		}),
	}
	cmd.AddCommand(cs, reset)
	return cmd
}
