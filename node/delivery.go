package node

import (
	"context"
	"net/url"

	"github.com/switchboard-gw/switchboard/delivery"

	"github.com/switchboard-gw/switchboard/store"
	"github.com/switchboard-gw/switchboard/upstream"
)

// The dispatcher's store side must match what the store offers.
var _ delivery.OutboxStore = (*store.DB)(nil)

// newDispatcher starts the upstream dispatcher on the node's store, replaying
// the outbox.
func (n *Node) newDispatcher() (*delivery.Dispatcher, error) {
	dc := n.cfg.Delivery
	dc.Store = n.db
	dc.Logger = n.log
	dc.Origin = originOf(n.cfg.PublicURL)
	dc.OnReply = n.runReply
	var err error
	if dc.TLS, err = n.cfg.TLS.upstreamTLS(n); err != nil {
		return nil, err
	}
	n.observeAttempts(&dc)
	dc.TracerProvider = n.cfg.TracerProvider
	dc.OnDisable = func(hub, name, reason string) {
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		if err := n.config.SetUpstreamDisabled(ctx, hub, name, true, reason); err != nil {
			n.log.Error("saving disabled upstream", "hub", hub, "upstream", name, "err", err)
		}
	}
	return delivery.NewDispatcher(dc)
}

// runReply hands a notification's reply to the gateway, which logs what
// fails; ctx carries the notification's trace context.
func (n *Node) runReply(ctx context.Context, ev *upstream.Event, r *upstream.Reply) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	_ = n.gw.RunReply(ctx, ev, r)
}

// originOf is the gateway name sent as WebHook-Request-Origin: the public
// URL's host name (a DNS name, as the CloudEvents webhook spec expects).
func originOf(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "switchboard"
}
