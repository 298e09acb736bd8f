package node

import (
	"context"

	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/store"
)

// azureUpstream is the Azure profile's part of u's delivery target, nil for
// an upstream of the gateway's own profile. Its requests are signed with
// the access keys (as Azure signs with the AccessKey an app's connection
// string holds), so every reload after a key rotation hands it the new ones.
func (n *Node) azureUpstream(u store.Upstream) (*delivery.AzureUpstream, error) {
	if u.Profile != delivery.ProfileAzure {
		return nil, nil
	}
	rules, err := delivery.ParseAzureRules(u.HubPattern, u.CategoryPattern, u.EventPattern)
	if err != nil {
		return nil, err
	}
	az := &delivery.AzureUpstream{Rules: rules}
	keys, err := n.config.AccessKeys(context.Background())
	if err != nil {
		// Delivery reports the upstream as misconfigured meanwhile.
		n.log.Error("no access keys to sign azure-signalr upstream requests with", "hub", u.Hub, "upstream", u.Name, "err", err)
	}
	for _, k := range keys {
		az.AccessKeys = append(az.AccessKeys, k.Secret)
	}
	return az, nil
}
