package httpapi

import (
	"net/http"
	"strings"

	"github.com/switchboard-gw/switchboard/delivery"
)

// validateProfile checks an upstream's profile and the fields that go with
// it. An azure-signalr upstream is selected by Azure's hub, category and
// event patterns and signed with the access keys, so it takes neither
// events nor secrets; and it skips the OPTIONS registration check, which
// handlers written for Azure SignalR (the Functions trigger) do not answer.
func (in *upstreamInput) validateProfile() error {
	if err := delivery.CheckProfile(in.Profile); err != nil {
		return fail(http.StatusBadRequest, "profile: "+err.Error())
	}
	if in.Profile == delivery.ProfileSwitchboard {
		in.Profile = "" // the default is stored as none
	}
	if in.Profile != delivery.ProfileAzure {
		if in.HubPattern != "" || in.CategoryPattern != "" || in.EventPattern != "" {
			return fail(http.StatusBadRequest, `hubPattern, categoryPattern and eventPattern belong to the "azure-signalr" profile; `+
				`upstreams of the default profile choose their events with events`)
		}
		return nil
	}
	switch {
	case len(in.Events) > 0:
		return fail(http.StatusBadRequest, `events: an "azure-signalr" upstream chooses its events with hubPattern, categoryPattern and eventPattern, as Azure's upstream templates do`)
	case len(in.Secrets) > 0:
		return fail(http.StatusBadRequest, `secrets: an "azure-signalr" upstream is signed with the access keys (X-ASRS-Signature), as Azure signs it; it has no secrets of its own`)
	}
	if _, err := delivery.ParseAzureRules(in.HubPattern, in.CategoryPattern, in.EventPattern); err != nil {
		return fail(http.StatusBadRequest, strings.TrimPrefix(err.Error(), delivery.ErrBadFilter.Error()+": "))
	}
	in.SkipValidation = true
	return nil
}
