package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchboard-gw/switchboard/node"
)

// writeFile writes text to a new file in a temporary folder and returns
// its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveConfig is the node.Config switchboard serve would start with, given
// its command line and environment.
func serveConfig(args []string, environ map[string]string) (node.Config, error) {
	cmd, f := newServeCmd()
	if err := cmd.ParseFlags(args); err != nil {
		return node.Config{}, err
	}
	lookup := func(k string) (string, bool) { v, ok := environ[k]; return v, ok }
	if err := f.settings.apply(cmd.Flags(), lookup); err != nil {
		return node.Config{}, err
	}
	return f.config()
}

// TestSettingsPrecedence: a flag on the command line beats its
// environment variable, which beats the file, which beats the default; for
// every kind of flag (string, list, number, duration, bool), and for the
// documented older variable name.
func TestSettingsPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "sb.yaml", `
listen: 127.0.0.1:1001
public-url: http://file.example
node-id: file
allowed-origin: [https://file.example, https://file2.example]
outbox-ttl: 1h
max-groups-per-connection: 7
nats-embedded: true
nats-route:
  - nats-route://127.0.0.1:6001
upstream-allow: 10.1.0.0/16
`)
	for _, tt := range []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(node.Config) string
		wantErr string
	}{
		{"file over default", []string{"--config", file}, nil, func(c node.Config) string {
			return diff(c.Listen, "127.0.0.1:1001", c.PublicURL, "http://file.example", c.NodeID, "file",
				strings.Join(c.AllowedOrigins, " "), "https://file.example https://file2.example",
				c.Delivery.OutboxTTL.String(), "1h0m0s", fmt.Sprint(c.Limits.MaxGroupsPerConnection), "7",
				fmt.Sprint(c.NATSEmbedded != nil), "true", fmt.Sprint(c.NATSEmbedded.Routes), "[nats-route://127.0.0.1:6001]",
				fmt.Sprint(c.Delivery.Addresses.Allow), "[10.1.0.0/16]",
				c.LongPolling.PollWait.String(), "0s") // not in the file: the default
		}, ""},
		{"environment over file", []string{"--config", file}, map[string]string{
			"SWITCHBOARD_PUBLIC_URL": "http://env.example", "SWITCHBOARD_ALLOWED_ORIGIN": "https://env.example,https://env2.example",
			"SWITCHBOARD_OUTBOX_TTL": "2h", "SWITCHBOARD_MAX_GROUPS_PER_CONNECTION": "8", "SWITCHBOARD_NATS_ROUTE": "nats-route://127.0.0.1:6002",
			"SWITCHBOARD_NODE_ID": "", // empty counts as unset, as before
		}, func(c node.Config) string {
			return diff(c.Listen, "127.0.0.1:1001", c.PublicURL, "http://env.example", c.NodeID, "file",
				strings.Join(c.AllowedOrigins, " "), "https://env.example https://env2.example",
				c.Delivery.OutboxTTL.String(), "2h0m0s", fmt.Sprint(c.Limits.MaxGroupsPerConnection), "8",
				fmt.Sprint(c.NATSEmbedded.Routes), "[nats-route://127.0.0.1:6002]")
		}, ""},
		{"flag over environment and file", []string{"--config", file, "--public-url", "http://flag.example", "--allowed-origin", "https://flag.example",
			"--outbox-ttl", "3h", "--nats-route", "nats-route://127.0.0.1:6003", "--nats-route", "nats-route://127.0.0.1:6004"}, map[string]string{
			"SWITCHBOARD_PUBLIC_URL": "http://env.example", "SWITCHBOARD_ALLOWED_ORIGINS": "https://env.example", "SWITCHBOARD_OUTBOX_TTL": "2h",
			"SWITCHBOARD_NATS_ROUTE": "nats-route://127.0.0.1:6002",
		}, func(c node.Config) string {
			return diff(c.PublicURL, "http://flag.example", strings.Join(c.AllowedOrigins, " "), "https://flag.example",
				c.Delivery.OutboxTTL.String(), "3h0m0s", fmt.Sprint(c.NATSEmbedded.Routes), "[nats-route://127.0.0.1:6003 nats-route://127.0.0.1:6004]")
		}, ""},
		{"older variable name", nil, map[string]string{"SWITCHBOARD_ALLOWED_ORIGINS": "https://old.example,https://old2.example"}, func(c node.Config) string {
			return diff(strings.Join(c.AllowedOrigins, " "), "https://old.example https://old2.example")
		}, ""},
		{"file named by the environment", nil, map[string]string{"SWITCHBOARD_CONFIG": file, "SWITCHBOARD_NATS_EMBEDDED": "false", "SWITCHBOARD_NATS_ROUTE": ""},
			// The file's nats-route needs nats-embedded, which the environment turned off.
			nil, "add --nats-embedded"},
		{"defaults", nil, nil, func(c node.Config) string {
			return diff(c.Listen, ":8080", c.DBPath, "switchboard.db", fmt.Sprint(c.NATSEmbedded == nil), "true")
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := serveConfig(tt.args, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := tt.check(c); d != "" {
				t.Error(d)
			}
		})
	}
}

// diff compares got, want pairs and describes the first mismatch.
func diff(pairs ...string) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] != pairs[i+1] {
			return fmt.Sprintf("setting %d: got %q, want %q", i/2, pairs[i], pairs[i+1])
		}
	}
	return ""
}

// TestSettingsEnvironmentErrors: a bad value in the environment names the
// variable and what was expected.
func TestSettingsEnvironmentErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ env, value, want string }{
		{"SWITCHBOARD_MAX_ACTIONS", "many", `SWITCHBOARD_MAX_ACTIONS: "many" is not a whole number`},
		{"SWITCHBOARD_OUTBOX_TTL", "30", `SWITCHBOARD_OUTBOX_TTL: "30" is not a duration`},
		{"SWITCHBOARD_NATS_EMBEDDED", "yes", `SWITCHBOARD_NATS_EMBEDDED: "yes" is not true or false`},
		{"SWITCHBOARD_CONFIG", "/nonexistent/sb.yaml", "--config: open /nonexistent/sb.yaml"},
	} {
		_, err := serveConfig(nil, map[string]string{tt.env: tt.value})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s=%s: got %v, want %q", tt.env, tt.value, err, tt.want)
		}
	}
}

// TestConfigCheck runs `switchboard config check` on good and bad files:
// every problem is reported at once, each as FILE:LINE: key: problem.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, text string
		want       []string // lines of the error, after "FILE:"
	}{
		{"good", "listen: 127.0.0.1:8080\nallowed-origin: [https://a.example]\nnats-embedded: true\nkv-replicas: 1\noutbox-ttl: 12h\n", nil},
		{"empty", "# nothing set\n", nil},
		{"unknown keys and wrong types", `# settings
listen: 127.0.0.1:8080
lisen: 127.0.0.1:9090
max-actions: plenty
outbox-ttl: 30
nats-embedded: yes
nats-route: {a: 1}
invocation-rate: fast
breaker-failures: -1
listen-everywhere: true
public-url:
node-id: [a, b]
`, []string{
			`3: lisen: unknown key; did you mean "listen"?`,
			`4: max-actions: "plenty" is not a whole number`,
			`5: outbox-ttl: "30" is not a duration such as 30s, 5m or 24h`,
			`6: nats-embedded: "yes" is not true or false`,
			`7: nats-route: takes a list of values, not a mapping`,
			`8: invocation-rate: "fast" is not a number`,
			`9: breaker-failures: "-1" is not a whole number, 0 or more`,
			`10: listen-everywhere: unknown key: the keys are the flag names of switchboard serve --help`,
			`11: public-url: no value`,
			`12: node-id: takes one value (string), not a list`,
		}},
		{"refused value", "listen: :8080\n\nkv-replicas: 9\n", []string{`3: kv-replicas: --kv-replicas 9: use 1 to 5`}},
		{"refused combination", "nats: nats://127.0.0.1:4222\nnats-embedded: true\n", []string{`1: nats: --nats and --nats-embedded exclude each other`}},
		{"embedded server's address without it", "listen: :8080\nnats-host: 0.0.0.0\n", []string{`2: nats-host: --nats-host configures the embedded server: add --nats-embedded`}},
		{"duplicate key", "listen: :1\ndb: a.db\nlisten: :2\n", []string{`3: listen: given twice (first on line 1)`}},
		{"not YAML", "listen: :1\ndb: a.db\nnode-id: n1: n2\n", []string{`3: not valid YAML: mapping values are not allowed`}},
		{"not a mapping", "- listen\n- db\n", []string{`1: the file must be a mapping of settings`}},
		{"two documents", "listen: :1\n---\ndb: a.db\n", []string{`3: a second YAML document`}},
		{"config is no key", "config: other.yaml\n", []string{`1: config: unknown key`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "sb.yaml", tt.text)
			out, errOut, err := sb(t, nil, "config", "check", path)
			if tt.want == nil {
				if err != nil || !strings.Contains(out, path+": ok") {
					t.Fatalf("config check: %v\n%s%s", err, out, errOut)
				}
				return
			}
			if err == nil {
				t.Fatalf("config check accepted:\n%s", tt.text)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, path+":"+w) {
					t.Errorf("got\n%s\nwant a line with %q", errOut, path+":"+w)
				}
			}
			if got := strings.Count(errOut, path+":"); got != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%s", got, len(tt.want), errOut)
			}
		})
	}
	if _, errOut, err := sb(t, nil, "config", "check", filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: got %v %s", err, errOut)
	}
}

// TestExampleConfig: docs/switchboard.example.yaml passes config check and
// names every serve flag, set or commented out (a flag added without its
// key in the example fails here).
func TestExampleConfig(t *testing.T) {
	t.Parallel()
	const example = "../../docs/switchboard.example.yaml"
	out, errOut, err := sb(t, nil, "config", "check", example)
	if err != nil {
		t.Fatalf("config check %s: %v\n%s%s", example, err, out, errOut)
	}
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#? ?([a-z0-9-]+):`).FindAllStringSubmatch(string(b), -1) {
		named[m[1]] = true
	}
	cmd, _ := newServeCmd()
	var missing []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !notSettings[f.Name] && !named[f.Name] {
			missing = append(missing, fmt.Sprintf("# %s: …  # %s", f.Name, f.Usage))
		}
	})
	if len(missing) > 0 {
		t.Errorf("%s does not name these serve flags; add them, with their help:\n%s", example, strings.Join(missing, "\n"))
	}
	for key := range named {
		if cmd.Flags().Lookup(key) == nil && !slices.Contains([]string{"config"}, key) {
			t.Errorf("%s names %q, which is no serve flag", example, key)
		}
	}
}

// TestServeReadsSettings starts the binary with a file, an environment
// variable and a flag that each give a setting, and sees the node listen
// where the flag says, announce the URL the environment gives, and keep
// the log level and database the file gives. The first start prints the
// keys, with that URL as the endpoint, before it says it listens (the node
// hands them over as soon as they are stored); the second prints none.
func TestServeReadsSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "from-file.db")
	listen := strings.TrimPrefix(closedURL(t), "http://")
	file := writeFile(t, "sb.yaml", fmt.Sprintf("listen: 127.0.0.1:1\npublic-url: http://file.example\ndb: %s\nlog-level: warn\n", db))
	serve := func() []string {
		lines, stop := startServe(t, []string{"SWITCHBOARD_PUBLIC_URL=http://env.example"}, "--config", file, "--listen", listen)
		stop()
		return lines
	}
	listening := fmt.Sprintf("Switchboard listening on %s (http://env.example)\n", listen)
	first := serve()
	if len(first) != 4 || first[0] != "First start: keys generated and stored. Keep these secret.\n" ||
		!strings.HasPrefix(first[1], "  Connection string: Endpoint=http://env.example;AccessKey=") ||
		!strings.HasPrefix(first[2], "  Admin key:         sbadm_") || first[3] != listening {
		t.Errorf("first start printed %q; want the keys, with the endpoint http://env.example, then %q", first, listening)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the database the file names: %v", err)
	}
	if again := serve(); len(again) != 1 || again[0] != listening {
		t.Errorf("second start printed %q; want only %q", again, listening)
	}
}

// TestIdleHandoffSetting: --idle-handoff (or its environment variable)
// reaches the node as it is given, a negative value included (it turns the
// move off); unset leaves the gateway's default.
func TestIdleHandoffSetting(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want time.Duration
	}{
		{nil, nil, 0},
		{[]string{"--idle-handoff", "10s"}, nil, 10 * time.Second},
		{[]string{"--idle-handoff=-1s"}, nil, -time.Second},
		{nil, map[string]string{"SWITCHBOARD_IDLE_HANDOFF": "-1s"}, -time.Second},
	} {
		c, err := serveConfig(tt.args, tt.env)
		if err != nil {
			t.Fatalf("%v %v: %v", tt.args, tt.env, err)
		}
		if c.IdleHandoff != tt.want {
			t.Errorf("%v %v: IdleHandoff %s, want %s", tt.args, tt.env, c.IdleHandoff, tt.want)
		}
	}
}
