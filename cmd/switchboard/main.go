// Command switchboard runs and administers a Switchboard gateway.
//
//	switchboard serve            run a gateway node
//	switchboard demo             run a gateway with the example chat app
//	switchboard hub …            create, update, list and remove hubs
//	switchboard upstream …       register, list and remove webhook upstreams;
//	                             make, show and rotate their signing secrets
//	switchboard token …          issue a client token from a connection string
//	switchboard keys …           list, rotate and revoke access keys
//	switchboard recover …        print the connection string, reset the admin
//	                             key: on a stopped node's database file
//	switchboard secrets …        make a key that seals secrets at rest
//
// Settings come from flags, or from SWITCHBOARD_* environment variables
// named after the flags (--public-url → SWITCHBOARD_PUBLIC_URL). The admin
// commands find the gateway through --server, SWITCHBOARD_SERVER, or the
// Endpoint of SWITCHBOARD_CONNECTION_STRING. --help never shows a secret
// taken from the environment as a flag's default.
package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "switchboard",
		Short:         "Self-hosted real-time gateway: SignalR clients in, signed webhooks out",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), demoCmd(), hubCmd(), upstreamCmd(), tokenCmd(), keysCmd(), recoverCmd(), secretsCmd())
	return root
}

// env returns SWITCHBOARD_<name> or def.
func env(name, def string) string {
	if v := os.Getenv("SWITCHBOARD_" + name); v != "" {
		return v
	}
	return def
}

// redactDefault keeps credentials in a URL flag's default out of --help: a
// default taken from the environment (nats://user:password@host, or
// nats://token@host) shows its user info as "redacted".
func redactDefault(fl *pflag.FlagSet, name string) {
	f := fl.Lookup(name)
	if f == nil || f.DefValue == "" {
		return
	}
	if u, err := url.Parse(f.DefValue); err != nil {
		f.DefValue = "(set by SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + ")"
	} else if u.User != nil {
		u.User = url.User("redacted")
		f.DefValue = u.String()
	}
}
