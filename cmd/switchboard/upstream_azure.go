package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// azureFlags are the flags of `upstream add` for the azure-signalr profile.
type azureFlags struct {
	profile, hubPattern, categoryPattern, eventPattern string
}

func (f *azureFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.profile, "profile", "", `webhook format: "switchboard" (default) or "azure-signalr" (requests as Azure SignalR sends them, signed with the access keys)`)
	cmd.Flags().StringVar(&f.hubPattern, "hub-pattern", "", "azure-signalr: hubs to send, as in Azure's upstream settings: *, a name or a comma-separated list (default *)")
	cmd.Flags().StringVar(&f.categoryPattern, "category-pattern", "", "azure-signalr: categories to send: *, connections, messages (default *)")
	cmd.Flags().StringVar(&f.eventPattern, "event-pattern", "", "azure-signalr: events to send: *, or names such as connected,disconnected,broadcast; connect only when named (default *)")
}

// apply adds the flags given to an upstream's JSON body.
func (f *azureFlags) apply(in map[string]any) {
	for key, v := range map[string]string{"profile": f.profile, "hubPattern": f.hubPattern,
		"categoryPattern": f.categoryPattern, "eventPattern": f.eventPattern} {
		if v != "" {
			in[key] = v
		}
	}
}

// azure reports whether the upstream being added is of the azure-signalr
// profile, which has no signing secret of its own.
func (f *azureFlags) azure() bool { return f.profile == "azure-signalr" }

// azureView is the profile part of an upstream as the admin API shows it.
type azureView struct {
	Profile         string `json:"profile"`
	HubPattern      string `json:"hubPattern"`
	CategoryPattern string `json:"categoryPattern"`
	EventPattern    string `json:"eventPattern"`
}

// eventsColumn is what `upstream list` shows of the events an upstream
// receives: its filter, or for the azure-signalr profile its rules.
func (u upstreamView) eventsColumn() string {
	if u.Profile == "azure-signalr" {
		or := func(p string) string {
			if p == "" {
				return "*"
			}
			return p
		}
		return fmt.Sprintf("azure-signalr hub=%s category=%s event=%s", or(u.HubPattern), or(u.CategoryPattern), or(u.EventPattern))
	}
	if len(u.Events) == 0 {
		return "all"
	}
	return strings.Join(u.Events, ",")
}
