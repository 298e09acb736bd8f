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
//	switchboard config check …   validate a settings file for serve --config
//
// Settings come from flags, from SWITCHBOARD_* environment variables named
// after the flags (--public-url → SWITCHBOARD_PUBLIC_URL), and for serve
// from a YAML file (--config), in that order of precedence (settings.go).
// Values from the environment and the file never show in --help. The admin
// commands find the gateway through --server, SWITCHBOARD_SERVER, or the
// Endpoint of SWITCHBOARD_CONNECTION_STRING.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
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
	root.AddCommand(serveCmd(), demoCmd(), hubCmd(), upstreamCmd(), tokenCmd(), keysCmd(), recoverCmd(), secretsCmd(), configCmd())
	return root
}

// env returns SWITCHBOARD_<name> or def. It is for the variables that are
// no flag's (SWITCHBOARD_SECRETS_KEY, the admin CLI's SWITCHBOARD_SERVER);
// every flag reads its own through settings.go.
func env(name, def string) string {
	if v := os.Getenv("SWITCHBOARD_" + name); v != "" {
		return v
	}
	return def
}
