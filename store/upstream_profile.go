package store

// UpstreamProfile is the webhook format of an upstream and, for the Azure
// SignalR profile, the rules that select its events. The zero value is the
// gateway's own contract (docs/webhooks.md).
type UpstreamProfile struct {
	// Profile is "" (or "switchboard") for the gateway's own contract, or
	// "azure-signalr" for requests as Azure SignalR Service sends them in
	// serverless mode (docs/migrate-from-azure.md).
	Profile string `json:"profile,omitempty"`
	// HubPattern, CategoryPattern and EventPattern select the events of an
	// azure-signalr upstream as the rules of an Azure upstream template do:
	// "*" (or empty) for any, one name, or a comma-separated list. Upstreams
	// of the gateway's own profile use Events instead.
	HubPattern      string `json:"hubPattern,omitempty"`
	CategoryPattern string `json:"categoryPattern,omitempty"`
	EventPattern    string `json:"eventPattern,omitempty"`
}
