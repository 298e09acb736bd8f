package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/negotiate"
)

func tokenCmd() *cobra.Command {
	var conn, hub, user string
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a client token and URL for a hub, signed with the connection string's key",
		Long: "Print what an app's negotiate function gives a client: the gateway's client URL for the hub and a\n" +
			"token signed with the connection string's access key, offline (the gateway is not contacted).\n" +
			"Any SignalR client connects with them; the hub must exist when it does.",
		Example: "  switchboard token --hub chat --user alice --lifetime 10m",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if conn == "" {
				conn = env("CONNECTION_STRING", "")
			}
			if conn == "" {
				return fmt.Errorf("no connection string: pass --connection-string or set SWITCHBOARD_CONNECTION_STRING (the gateway printed it at its first start)")
			}
			cs, err := negotiate.ParseConnectionString(conn)
			if err != nil {
				return fmt.Errorf("connection string: %w", err)
			}
			resp, err := negotiate.NewResponse(cs, hub, user, negotiate.WithLifetime(lifetime))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "url:   %s\ntoken: %s\n", resp.URL, resp.AccessToken)
			return nil
		},
	}
	cmd.Flags().StringVar(&conn, "connection-string", "", "gateway connection string printed at first start (default $SWITCHBOARD_CONNECTION_STRING)")
	cmd.Flags().StringVar(&hub, "hub", "", "hub name (required)")
	cmd.Flags().StringVar(&user, "user", "", "user id for the token")
	cmd.Flags().DurationVar(&lifetime, "lifetime", time.Hour, "token lifetime")
	_ = cmd.MarkFlagRequired("hub")
	return cmd
}
