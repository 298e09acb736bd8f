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
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := negotiate.ParseConnectionString(conn)
			if err != nil {
				return fmt.Errorf("--connection-string: %w", err)
			}
			resp, err := negotiate.NewResponse(cs, hub, user, negotiate.WithLifetime(lifetime))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "url:   %s\ntoken: %s\n", resp.URL, resp.AccessToken)
			return nil
		},
	}
	cmd.Flags().StringVar(&conn, "connection-string", env("CONNECTION_STRING", ""), "gateway connection string (printed at first start)")
	cmd.Flags().StringVar(&hub, "hub", "", "hub name (required)")
	cmd.Flags().StringVar(&user, "user", "", "user id for the token")
	cmd.Flags().DurationVar(&lifetime, "lifetime", time.Hour, "token lifetime")
	_ = cmd.MarkFlagRequired("hub")
	return cmd
}
