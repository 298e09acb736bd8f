package httpapi

import "github.com/switchboard-gw/switchboard/gateway"

// Transport names as the metrics and the connection log lines show them:
// SignalR's own names for its transports, in lower case.
const (
	transportWebSockets       = "websockets"
	transportServerSentEvents = "serversentevents"
	transportLongPolling      = "longpolling"
)

var (
	_ gateway.NamedTransport = (*wsTransport)(nil)
	_ gateway.NamedTransport = (*sseTransport)(nil)
	_ gateway.NamedTransport = (*pollTransport)(nil)
)

func (*wsTransport) TransportName() string   { return transportWebSockets }
func (*sseTransport) TransportName() string  { return transportServerSentEvents }
func (*pollTransport) TransportName() string { return transportLongPolling }
