package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/upstream"
)

// defaultServer is where the admin commands look for a gateway when
// nothing says otherwise: the address `switchboard serve` listens on.
const defaultServer = "http://127.0.0.1:8080"

// adminClient calls a running gateway's admin API.
type adminClient struct {
	server, key string
}

// register adds --server and --admin-key. Neither shows a value from the
// environment as its default in --help: the admin key is a secret, and the
// server may come from a connection string that holds one.
func (a *adminClient) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&a.server, "server", "", "base URL of the gateway (default $SWITCHBOARD_SERVER, else the Endpoint of "+
		"$SWITCHBOARD_CONNECTION_STRING, else "+defaultServer+")")
	fl.StringVar(&a.key, "admin-key", "", "admin key printed at the gateway's first start (default $SWITCHBOARD_ADMIN_KEY)")
}

// target resolves the gateway's URL and says where it came from, for
// error messages.
func (a *adminClient) target() (base, source string, err error) {
	switch {
	case a.server != "":
		return a.server, "--server", nil
	case env("SERVER", "") != "":
		return env("SERVER", ""), "SWITCHBOARD_SERVER", nil
	case env("CONNECTION_STRING", "") != "":
		cs, err := negotiate.ParseConnectionString(env("CONNECTION_STRING", ""))
		if err != nil {
			return "", "", fmt.Errorf("SWITCHBOARD_CONNECTION_STRING, used to find the gateway: %w; fix it, or pass --server URL", err)
		}
		return cs.Endpoint, "the Endpoint of SWITCHBOARD_CONNECTION_STRING", nil
	}
	return defaultServer, "the default", nil
}

// do sends a request and decodes a JSON answer into out (if not nil). Error
// answers become errors carrying the gateway's own message.
func (a *adminClient) do(method, path string, in, out any) error {
	key := a.key
	if key == "" {
		key = env("ADMIN_KEY", "")
	}
	if key == "" {
		return fmt.Errorf("no admin key: pass --admin-key or set SWITCHBOARD_ADMIN_KEY (the gateway printed it at its first start)")
	}
	base, source, err := a.target()
	if err != nil {
		return err
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("gateway URL %q (from %s) is not an http(s) URL such as %s", base, source, defaultServer)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(base, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("no gateway answered at %s (from %s): %v.\n"+
			"Start one with `switchboard serve`, or point the CLI at yours with --server URL, "+
			"SWITCHBOARD_SERVER=URL, or SWITCHBOARD_CONNECTION_STRING (its Endpoint is used)", base, source, err)
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
		return fmt.Errorf("%s %s on %s (from %s): %s; is that a Switchboard gateway?", method, path, base, source, resp.Status)
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// hubView is a hub as the admin API answers it.
type hubView struct {
	Name           string   `json:"name"`
	AllowAnonymous bool     `json:"allowAnonymous"`
	MaxMessageSize int      `json:"maxMessageSize"`
	AllowedOrigins []string `json:"allowedOrigins"`
	Transports     []string `json:"transports"`
}

func (h *hubView) print(w io.Writer) {
	origins := strings.Join(h.AllowedOrigins, ",")
	if origins == "" {
		origins = "any"
	}
	fmt.Fprintf(w, "  anonymous: %v\n  max message size: %d bytes\n  allowed origins: %s\n  transports: %s\n",
		h.AllowAnonymous, h.MaxMessageSize, origins, strings.Join(h.Transports, ","))
}

// transportUsage describes the --transport flag.
const transportUsage = "client transport the hub offers: WebSockets, ServerSentEvents or LongPolling"

func hubPath(name string) string { return "/admin/hubs/" + url.PathEscape(name) }

func hubCmd() *cobra.Command {
	var a adminClient
	cmd := &cobra.Command{Use: "hub", Short: "Create, update, list and remove hubs"}
	a.register(cmd)

	var anonymous bool
	var maxSize int
	var origins, transports []string
	add := &cobra.Command{
		Use: "add NAME", Short: "Create a hub", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := map[string]any{"name": args[0], "allowAnonymous": anonymous, "maxMessageSize": maxSize, "allowedOrigins": origins, "transports": transports}
			var h hubView
			if err := a.do(http.MethodPost, "/admin/hubs", in, &h); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hub %s created\n", args[0])
			h.print(cmd.OutOrStdout())
			return nil
		},
	}
	add.Flags().BoolVar(&anonymous, "anonymous", false, "let clients connect without a token")
	add.Flags().IntVar(&maxSize, "max-message-size", 0, "largest client message in bytes (default 32768)")
	add.Flags().StringSliceVar(&origins, "allowed-origin", nil, "browser origin allowed (repeatable; default any)")
	add.Flags().StringSliceVar(&transports, "transport", nil, transportUsage+" (repeatable; default all three)")

	var anyOrigin, allTransports bool
	update := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a hub's settings; settings not given keep their value",
		Example: "  switchboard hub update chat --max-message-size 65536 --allowed-origin https://app.example.com\n" +
			"  switchboard hub update chat --anonymous=false --any-origin\n" +
			"  switchboard hub update chat --transport ServerSentEvents --transport LongPolling",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if !fl.Changed("anonymous") && !fl.Changed("max-message-size") && !fl.Changed("allowed-origin") && !fl.Changed("any-origin") &&
				!fl.Changed("transport") && !fl.Changed("all-transports") {
				return fmt.Errorf("nothing to change: give --anonymous, --max-message-size, --allowed-origin, --any-origin, --transport or --all-transports")
			}
			if fl.Changed("allowed-origin") && anyOrigin {
				return fmt.Errorf("--allowed-origin and --any-origin exclude each other")
			}
			if fl.Changed("transport") && allTransports {
				return fmt.Errorf("--transport and --all-transports exclude each other")
			}
			var h hubView
			if err := a.do(http.MethodGet, hubPath(args[0]), nil, &h); err != nil {
				return err
			}
			if fl.Changed("anonymous") {
				h.AllowAnonymous = anonymous
			}
			if fl.Changed("max-message-size") {
				h.MaxMessageSize = maxSize
			}
			if fl.Changed("allowed-origin") {
				h.AllowedOrigins = origins
			}
			if anyOrigin {
				h.AllowedOrigins = nil
			}
			if fl.Changed("transport") {
				h.Transports = transports
			}
			if allTransports {
				h.Transports = nil
			}
			if err := a.do(http.MethodPut, hubPath(args[0]), h, &h); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hub %s updated\n", h.Name)
			h.print(cmd.OutOrStdout())
			return nil
		},
	}
	update.Flags().BoolVar(&anonymous, "anonymous", false, "let clients connect without a token (--anonymous=false to require one)")
	update.Flags().IntVar(&maxSize, "max-message-size", 0, "largest client message in bytes (0 for the default, 32768)")
	update.Flags().StringSliceVar(&origins, "allowed-origin", nil, "browser origin allowed (repeatable); replaces the list")
	update.Flags().BoolVar(&anyOrigin, "any-origin", false, "clear the list: any origin (or the server-wide --allowed-origin)")
	update.Flags().StringSliceVar(&transports, "transport", nil, transportUsage+" (repeatable); replaces the list")
	update.Flags().BoolVar(&allTransports, "all-transports", false, "clear the list: all three transports")

	list := &cobra.Command{
		Use: "list", Short: "List hubs with the settings in force", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var hubs []hubView
			if err := a.do(http.MethodGet, "/admin/hubs", nil, &hubs); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tANONYMOUS\tMAX MESSAGE\tORIGINS")
			for _, h := range hubs {
				origins := strings.Join(h.AllowedOrigins, ",")
				if origins == "" {
					origins = "any"
				}
				fmt.Fprintf(w, "%s\t%v\t%d\t%s\n", h.Name, h.AllowAnonymous, h.MaxMessageSize, origins)
			}
			return w.Flush()
		},
	}
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Delete a hub and its upstreams", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.do(http.MethodDelete, hubPath(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hub %s removed\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, update, list, remove)
	return cmd
}

// upstreamLogCmd prints an upstream's latest deliveries, newest first, so a
// function author sees why calls failed.
func upstreamLogCmd(a *adminClient, hub *string) *cobra.Command {
	return &cobra.Command{
		Use: "log NAME", Short: "Show an upstream's latest deliveries and why they failed", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needHub(*hub); err != nil {
				return err
			}
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
			if err := a.do(http.MethodGet, upstreamPath(*hub, args[0])+"/log", nil, &log); err != nil {
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
	Warnings    []string `json:"warnings"`
	Disabled    bool     `json:"disabled"`
	azureView
}

type secretsView struct {
	Secrets []string `json:"secrets"`
	Dropped int      `json:"dropped"`
}

func upstreamPath(hub, name string) string {
	return hubPath(hub) + "/upstreams/" + url.PathEscape(name)
}

// needHub checks the --hub flag of the commands that need one (not every
// upstream subcommand does: secret generate works offline).
func needHub(hub string) error {
	if hub == "" {
		return fmt.Errorf("--hub is required: the hub the upstream belongs to (switchboard hub list shows them)")
	}
	return nil
}

// warn prints the gateway's warnings on stderr, where scripts reading
// stdout do not trip over them.
func warn(cmd *cobra.Command, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
}

func upstreamCmd() *cobra.Command {
	var a adminClient
	var hub string
	cmd := &cobra.Command{Use: "upstream", Short: "Register, list and remove webhook upstreams of a hub; show and rotate their signing secrets"}
	a.register(cmd)
	cmd.PersistentFlags().StringVar(&hub, "hub", "", "hub name (required except by secret generate)")

	var urlTemplate, timeout, secret string
	var events []string
	var skipValidation bool
	var oauth2 oauth2Flags
	var az azureFlags
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Register an upstream; prints its signing secret",
		Long: "Register an upstream. The gateway first sends the URL an OPTIONS registration check, so start the\n" +
			"function first (upstream.Handler answers the check even before it has its secret), or pass\n" +
			"--skip-validation. Without --secret the gateway generates the signing secret and prints it once.\n" +
			"Blocking events (connect, message) go to the first upstream of the hub that takes them:\n" +
			"add warns when an earlier upstream already takes this one's.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needHub(hub); err != nil {
				return err
			}
			in := map[string]any{"name": args[0], "urlTemplate": urlTemplate, "events": events, "skipValidation": skipValidation}
			if timeout != "" {
				in["timeout"] = timeout
			}
			if secret != "" {
				in["secrets"] = []string{secret}
			}
			if err := oauth2.apply(in); err != nil {
				return err
			}
			az.apply(in)
			var out upstreamView
			if err := a.do(http.MethodPost, hubPath(hub)+"/upstreams", in, &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "upstream %s registered on hub %s\n", out.Name, out.Hub)
			switch {
			case az.azure():
				fmt.Fprintln(w, "signed with the access keys (X-ASRS-Signature), as Azure SignalR signs")
			case secret != "":
				fmt.Fprintln(w, "signing secret: the one given with --secret")
			default:
				fmt.Fprintf(w, "signing secret: %s\n", strings.Join(out.Secrets, " "))
			}
			warn(cmd, out.Warnings)
			return nil
		},
	}
	add.Flags().StringVar(&urlTemplate, "url", "", "URL template, e.g. https://fn.example.com/api/{event} (placeholders {hub} {category} {event})")
	add.Flags().StringSliceVar(&events, "events", nil, "events to send: connect,connected,disconnected,message:* (default all)")
	add.Flags().StringVar(&timeout, "timeout", "", "per-call timeout, e.g. 5s (default 10s)")
	add.Flags().StringVar(&secret, "secret", "", "signing secret to use (whsec_…, e.g. from `switchboard upstream secret generate`; default: generated)")
	add.Flags().BoolVar(&skipValidation, "skip-validation", false, "save without the OPTIONS registration check (local development)")
	oauth2.register(add.Flags())
	az.register(add)
	_ = add.MarkFlagRequired("url")

	list := &cobra.Command{
		Use:   "list",
		Short: "List a hub's upstreams in the order events try them",
		Long: "List a hub's upstreams in the order events try them (#). Blocking events (connect, message) go to\n" +
			"the first upstream that takes them; connected and disconnected go to every one that takes them.\n" +
			"Warnings on stderr name upstreams that lose blocking events to an earlier one.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needHub(hub); err != nil {
				return err
			}
			var ups []upstreamView
			if err := a.do(http.MethodGet, hubPath(hub)+"/upstreams", nil, &ups); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "#\tNAME\tURL TEMPLATE\tEVENTS\tTIMEOUT\tSECRETS")
			var warnings []string
			for i, u := range ups {
				ev := u.eventsColumn()
				t := u.Timeout
				if t == "" || t == "0s" {
					t = "default"
				}
				name := u.Name
				if u.Disabled {
					name += " (disabled)"
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, name, u.URLTemplate, ev, t, strings.Join(u.Secrets, " "))
				warnings = append(warnings, u.Warnings...)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			warn(cmd, warnings)
			return nil
		},
	}
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Remove an upstream", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needHub(hub); err != nil {
				return err
			}
			if err := a.do(http.MethodDelete, upstreamPath(hub, args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "upstream %s removed from hub %s\n", args[0], hub)
			return nil
		},
	}
	cmd.AddCommand(add, list, remove, upstreamLogCmd(&a, &hub), upstreamSecretCmd(&a, &hub))
	return cmd
}

// upstreamSecretCmd makes, shows and rotates signing secrets.
func upstreamSecretCmd(a *adminClient, hub *string) *cobra.Command {
	cmd := &cobra.Command{Use: "secret", Short: "Make, show and rotate upstream signing secrets"}
	generate := &cobra.Command{
		Use:   "generate",
		Short: "Print a new signing secret (whsec_…) without contacting the gateway",
		Long: "Print a new signing secret: whsec_ and the base64 of 32 random bytes. Start the function with it,\n" +
			"then register the upstream with `switchboard upstream add … --secret`, and both sides know it from the start.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), upstream.NewSecret())
			return nil
		},
	}
	show := &cobra.Command{
		Use: "show NAME", Short: "Print an upstream's signing secrets in full, newest first, one a line", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needHub(*hub); err != nil {
				return err
			}
			var out secretsView
			if err := a.do(http.MethodGet, upstreamPath(*hub, args[0])+"/secrets", nil, &out); err != nil {
				return err
			}
			for _, s := range out.Secrets {
				fmt.Fprintln(cmd.OutOrStdout(), s)
			}
			return nil
		},
	}
	var given string
	rotate := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Sign with a new secret; the previous one stays active beside it, older ones are dropped",
		Long: "Rotate an upstream's signing secret. The new secret (--secret, or generated) signs from now on and\n" +
			"the previous newest stays active, so every webhook carries both signatures: give the function the\n" +
			"new secret (it may accept both meanwhile) without a moment where its webhooks fail. The next\n" +
			"rotation drops the secret this one kept.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needHub(*hub); err != nil {
				return err
			}
			var in any
			if given != "" {
				in = map[string]string{"secret": given}
			}
			var out secretsView
			if err := a.do(http.MethodPost, upstreamPath(*hub, args[0])+"/secrets/:rotate", in, &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if given != "" {
				fmt.Fprintln(w, "new signing secret: the one given with --secret")
			} else {
				fmt.Fprintf(w, "new signing secret: %s\n", out.Secrets[0])
			}
			if len(out.Secrets) > 1 {
				fmt.Fprintln(w, "the previous secret stays active until the next rotation; webhooks carry both signatures")
			}
			if out.Dropped > 0 {
				fmt.Fprintf(w, "dropped %d older secret(s)\n", out.Dropped)
			}
			return nil
		},
	}
	rotate.Flags().StringVar(&given, "secret", "", "the new secret (whsec_…; default: generated)")
	cmd.AddCommand(generate, show, rotate)
	return cmd
}
