package main

import (
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func keysCmd() *cobra.Command {
	var a adminClient
	cmd := &cobra.Command{Use: "keys", Short: "List, rotate and revoke the access keys that sign client and REST tokens"}
	a.register(cmd)

	type keyView struct {
		ID        string    `json:"id"`
		CreatedAt time.Time `json:"createdAt"`
	}
	list := &cobra.Command{
		Use: "list", Short: "List access keys, newest (the one new tokens are signed with) first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Keys []keyView `json:"keys"`
			}
			if err := a.do(http.MethodGet, "/admin/keys", nil, &out); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tCREATED\tROLE")
			for i, k := range out.Keys {
				role := "primary"
				if i > 0 {
					role = "secondary"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", k.ID, k.CreatedAt.Format(time.RFC3339), role)
			}
			return w.Flush()
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new primary key; the previous primary stays valid as secondary, older keys are dropped",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				ID               string   `json:"id"`
				ConnectionString string   `json:"connectionString"`
				Dropped          []string `json:"dropped"`
			}
			if err := a.do(http.MethodPost, "/admin/keys/:rotate", nil, &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "new primary key: %s\nconnection string: %s\n", out.ID, out.ConnectionString)
			for _, id := range out.Dropped {
				fmt.Fprintf(w, "dropped key: %s (its tokens no longer verify)\n", id)
			}
			fmt.Fprintln(w, "Give the connection string to your functions, then revoke the previous key with: switchboard keys revoke ID")
			return nil
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an access key: tokens it signed get 401 from now on", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.do(http.MethodDelete, "/admin/keys/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, rotate, revoke)
	return cmd
}
