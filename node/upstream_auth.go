package node

import (
	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/store"
)

// clientCredentials is an upstream's stored OAuth2 settings as the
// dispatcher takes them; nil for an upstream without.
func clientCredentials(o *store.OAuth2) *delivery.ClientCredentials {
	if o == nil {
		return nil
	}
	return &delivery.ClientCredentials{TokenURL: o.TokenURL, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Scopes: o.Scopes, Params: o.Params}
}
