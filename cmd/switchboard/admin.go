package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// adminClient calls a running gateway's admin API.
type adminClient struct {
	server, key string
}

func (a *adminClient) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&a.server, "server", env("SERVER", "http://127.0.0.1:8080"), "base URL of the gateway's admin API")
	fl.StringVar(&a.key, "admin-key", env("ADMIN_KEY", ""), "admin key (printed at the gateway's first start)")
}

// do sends a request and decodes a JSON answer into out (if not nil). Error
// answers become errors carrying the gateway's own message.
func (a *adminClient) do(method, path string, in, out any) error {
	if a.key == "" {
		return fmt.Errorf("no admin key: pass --admin-key or set SWITCHBOARD_ADMIN_KEY")
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(a.server, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s (%d)", e.Error, resp.StatusCode)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

func hubCmd() *cobra.Command {
	var a adminClient
	cmd := &cobra.Command{Use: "hub", Short: "Create, list and remove hubs"}
	a.register(cmd)

	var anonymous bool
	var maxSize int
	var origins []string
	add := &cobra.Command{
		Use: "add NAME", Short: "Create a hub", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := map[string]any{"name": args[0], "allowAnonymous": anonymous, "maxMessageSize": maxSize, "allowedOrigins": origins}
			if err := a.do(http.MethodPost, "/admin/hubs", in, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hub %s created\n", args[0])
			return nil
		},
	}
	add.Flags().BoolVar(&anonymous, "anonymous", false, "let clients connect without a token")
	add.Flags().IntVar(&maxSize, "max-message-size", 0, "largest client message in bytes (default 32768)")
	add.Flags().StringSliceVar(&origins, "allowed-origin", nil, "browser origin allowed (repeatable; default any)")

	list := &cobra.Command{
		Use: "list", Short: "List hubs", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var hubs []struct {
				Name           string   `json:"name"`
				AllowAnonymous bool     `json:"allowAnonymous"`
				MaxMessageSize int      `json:"maxMessageSize"`
				AllowedOrigins []string `json:"allowedOrigins"`
			}
			if err := a.do(http.MethodGet, "/admin/hubs", nil, &hubs); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tANONYMOUS\tMAX MESSAGE\tORIGINS")
			for _, h := range hubs {
				fmt.Fprintf(w, "%s\t%v\t%d\t%s\n", h.Name, h.AllowAnonymous, h.MaxMessageSize, strings.Join(h.AllowedOrigins, ","))
			}
			return w.Flush()
		},
	}
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Delete a hub and its upstreams", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.do(http.MethodDelete, "/admin/hubs/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hub %s removed\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

// upstreamLogCmd prints an upstream's latest deliveries, newest first, so a
// function author sees why calls failed.
func upstreamLogCmd(a *adminClient, hub *string) *cobra.Command {
	return &cobra.Command{
		Use: "log NAME", Short: "Show an upstream's latest deliveries and why they failed", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var log []struct {
				Time         time.Time `json:"time"`
				Event        string    `json:"event"`
				Target       string    `json:"target"`
				ConnectionID string    `json:"connectionId"`
				Status       int       `json:"status"`
				LatencyMS    float64   `json:"latencyMs"`
				Attempt      int       `json:"attempt"`
				Error        string    `json:"error"`
			}
			path := "/admin/hubs/" + url.PathEscape(*hub) + "/upstreams/" + url.PathEscape(args[0]) + "/log"
			if err := a.do(http.MethodGet, path, nil, &log); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TIME	EVENT	CONNECTION	STATUS	LATENCY	ATTEMPT	ERROR")
			for _, d := range log {
				ev := d.Event
				if d.Target != "" {
					ev += ":" + d.Target
				}
				status := "-"
				if d.Status != 0 {
					status = fmt.Sprint(d.Status)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1fms\t%d\t%s\n", d.Time.Local().Format("15:04:05.000"), ev, d.ConnectionID,
					status, d.LatencyMS, d.Attempt, d.Error)
			}
			return w.Flush()
		},
	}
}

type upstreamView struct {
	Hub         string   `json:"hub"`
	Name        string   `json:"name"`
	URLTemplate string   `json:"urlTemplate"`
	Events      []string `json:"events"`
	Timeout     string   `json:"timeout"`
	Secrets     []string `json:"secrets"`
}

func upstreamCmd() *cobra.Command {
	var a adminClient
	var hub string
	cmd := &cobra.Command{Use: "upstream", Short: "Register, list and remove webhook upstreams of a hub"}
	a.register(cmd)
	cmd.PersistentFlags().StringVar(&hub, "hub", "", "hub name (required)")
	_ = cmd.MarkPersistentFlagRequired("hub")

	var urlTemplate, timeout string
	var events []string
	var skipValidation bool
	add := &cobra.Command{
		Use: "add NAME", Short: "Register an upstream; prints its signing secret", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := map[string]any{"name": args[0], "urlTemplate": urlTemplate, "events": events, "skipValidation": skipValidation}
			if timeout != "" {
				in["timeout"] = timeout
			}
			var out upstreamView
			if err := a.do(http.MethodPost, "/admin/hubs/"+url.PathEscape(hub)+"/upstreams", in, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "upstream %s registered on hub %s\nsigning secret: %s\n", out.Name, out.Hub, strings.Join(out.Secrets, " "))
			return nil
		},
	}
	add.Flags().StringVar(&urlTemplate, "url", "", "URL template, e.g. https://fn.example.com/api/{event} (placeholders {hub} {category} {event})")
	add.Flags().StringSliceVar(&events, "events", nil, "events to send: connect,connected,disconnected,message:* (default all)")
	add.Flags().StringVar(&timeout, "timeout", "", "per-call timeout, e.g. 5s (default 10s)")
	add.Flags().BoolVar(&skipValidation, "skip-validation", false, "save without the OPTIONS registration check (local development)")
	_ = add.MarkFlagRequired("url")

	list := &cobra.Command{
		Use: "list", Short: "List a hub's upstreams in the order events try them", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ups []upstreamView
			if err := a.do(http.MethodGet, "/admin/hubs/"+url.PathEscape(hub)+"/upstreams", nil, &ups); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tURL TEMPLATE\tEVENTS\tTIMEOUT")
			for _, u := range ups {
				ev := strings.Join(u.Events, ",")
				if ev == "" {
					ev = "all"
				}
				t := u.Timeout
				if t == "" || t == "0s" {
					t = "default"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.Name, u.URLTemplate, ev, t)
			}
			return w.Flush()
		},
	}
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Remove an upstream", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.do(http.MethodDelete, "/admin/hubs/"+url.PathEscape(hub)+"/upstreams/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "upstream %s removed from hub %s\n", args[0], hub)
			return nil
		},
	}
	cmd.AddCommand(add, list, remove, upstreamLogCmd(&a, &hub))
	return cmd
}
