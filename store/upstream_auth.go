package store

// OAuth2 is how an upstream behind an OAuth-protected API gateway is
// called: the gateway obtains an access token with the OAuth 2.0
// client-credentials grant (RFC 6749 §4.4) and sends it as a bearer token
// beside the webhook signature. It is Switchboard's counterpart of Azure
// SignalR's upstream "ManagedIdentity" auth. ClientSecret is sealed at
// rest like the signing secrets (see WithSecrets).
type OAuth2 struct {
	TokenURL     string   `json:"tokenURL"`
	ClientID     string   `json:"clientID"`
	ClientSecret string   `json:"clientSecret"`
	Scopes       []string `json:"scopes,omitempty"`
	// Params are extra form parameters of the token request, such as
	// "audience" or "resource", which some providers want instead of scopes.
	Params map[string]string `json:"params,omitempty"`
}

func upstreamOAuth2AAD(hub, name string) string {
	return "switchboard upstream oauth2 client secret\x00" + hub + "\x00" + name
}

// sealOAuth2 returns u's OAuth2 with the client secret sealed, as a copy:
// the caller's value stays in clear.
func (s *sealer) sealOAuth2(u Upstream) *OAuth2 {
	if u.OAuth2 == nil {
		return nil
	}
	c := *u.OAuth2
	c.ClientSecret = s.seal(c.ClientSecret, upstreamOAuth2AAD(u.Hub, u.Name))
	return &c
}

// openOAuth2 opens a stored upstream's client secret in place.
func (s *sealer) openOAuth2(u *Upstream) error {
	if u.OAuth2 == nil {
		return nil
	}
	plain, err := s.open(u.OAuth2.ClientSecret, upstreamOAuth2AAD(u.Hub, u.Name))
	if err != nil {
		return err
	}
	u.OAuth2.ClientSecret = plain
	return nil
}

// resealOAuth2 brings a stored upstream's client secret to the current form.
func (s *sealer) resealOAuth2(u *Upstream) (bool, error) {
	if u.OAuth2 == nil {
		return false, nil
	}
	v, changed, err := s.reseal(u.OAuth2.ClientSecret, upstreamOAuth2AAD(u.Hub, u.Name))
	if err != nil {
		return false, err
	}
	u.OAuth2.ClientSecret = v
	return changed, nil
}
