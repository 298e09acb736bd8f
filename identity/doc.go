// Package identity lets callers of the REST and admin APIs authenticate
// with tokens from OpenID Connect issuers the operator trusts, instead of
// a JWT signed with an access key: a workload identity (a Kubernetes
// service-account token, a cloud instance identity, a CI job's OIDC token)
// then needs no secret in its configuration.
//
// A Policy (LoadPolicy reads one from a YAML or JSON file) names the
// trusted issuers, the audiences their tokens must carry, and grants that
// map a token's subject or claims to operations on hubs. NewVerifier makes
// a Verifier from it; Verifier.Authenticate checks a token's signature
// against the issuer's JWKS (discovered through the issuer's
// /.well-known/openid-configuration on first use, cached, and fetched again
// when a token names a key it does not know, so keys rotate without a
// restart), its iss, aud, exp and nbf, and returns the Principal the grants
// make of it. Principal.Allows answers the permission questions.
//
// Discovery and the claim checks are github.com/coreos/go-oidc/v3's, the
// signature checks go-jose's; this package adds the key cache (keys.go),
// the multi-issuer routing, the audience list, the grants and errors that
// say what to fix.
//
// A Verifier is safe for concurrent use and starts no goroutine: discovery
// and key fetches run in the request that needs them, bounded by its
// context and the HTTP client's timeout.
package identity
