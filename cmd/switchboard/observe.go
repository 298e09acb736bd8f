package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/switchboard-gw/switchboard/node"
)

// observeFlags are the settings of what a node tells its operator: the
// log's format and where Prometheus may scrape without the admin key.
type observeFlags struct {
	logFormat     string
	metricsListen string
}

func (o *observeFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&o.logFormat, "log-format", "text", "log lines as text (key=value) or json (one object per line)")
	fl.StringVar(&o.metricsListen, "metrics-listen", "",
		"also serve /metrics on this address without the admin key, e.g. 127.0.0.1:9090 (default: only on --listen, with the admin key)")
}

// logger is the node's logger at level in the chosen format, writing to w.
func (o *observeFlags) logger(w io.Writer, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", o.logFormat)
}

// apply sets the node's logger and the metrics address.
func (o *observeFlags) apply(cfg *node.Config, level slog.Level) error {
	log, err := o.logger(os.Stderr, level)
	if err != nil {
		return err
	}
	cfg.Logger, cfg.MetricsListen = log, o.metricsListen
	return nil
}
