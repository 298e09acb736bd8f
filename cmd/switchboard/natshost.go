package main

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/switchboard-gw/switchboard/node"
)

// embeddedNATSHost is where the embedded NATS server listens. Its default,
// loopback, suits nodes on one machine; nodes in containers or on several
// machines route to each other over a network, so their servers must bind
// to it (compose.yaml sets 0.0.0.0).
type embeddedNATSHost struct {
	host string
}

func (e *embeddedNATSHost) register(fl *pflag.FlagSet) {
	fl.StringVar(&e.host, "nats-host", "",
		"address the embedded NATS server's client and route listeners bind to, e.g. 0.0.0.0 in a container (default 127.0.0.1; it has no auth: keep it off public networks)")
}

// apply puts the address into the embedded server's options.
func (e *embeddedNATSHost) apply(cfg *node.Config) error {
	if e.host == "" {
		return nil
	}
	if cfg.NATSEmbedded == nil {
		return errors.New("--nats-host configures the embedded server: add --nats-embedded")
	}
	cfg.NATSEmbedded.Host = e.host
	return nil
}
