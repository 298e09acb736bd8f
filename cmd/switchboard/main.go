// Command switchboard runs and administers a Switchboard gateway.
//
//	switchboard serve            run a gateway node
//	switchboard demo             run a gateway with the example chat app
//	switchboard hub …            create, list and remove hubs
//	switchboard upstream …       register, list and remove webhook upstreams
//	switchboard token …          issue a client token from a connection string
//	switchboard keys …           list, rotate and revoke access keys
//
// Settings come from flags, or from SWITCHBOARD_* environment variables
// named after the flags (--public-url → SWITCHBOARD_PUBLIC_URL).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "switchboard",
		Short:         "Self-hosted real-time gateway: SignalR clients in, signed webhooks out",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), demoCmd(), hubCmd(), upstreamCmd(), tokenCmd(), keysCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

// env returns SWITCHBOARD_<name> or def.
func env(name, def string) string {
	if v := os.Getenv("SWITCHBOARD_" + name); v != "" {
		return v
	}
	return def
}
