// Package negotiate holds Switchboard's credentials: access keys, the HS256
// JWTs that clients and REST callers present, Azure-style connection strings,
// and the redirect negotiate response that an application's own negotiate
// function hands to the stock SignalR client.
//
// Entry points:
//
//   - [NewAccessKey] makes a key; two may be active at once for rotation, and
//     a token names its key with the JWT "kid" header.
//   - [IssueToken] signs a token; [NewResponse] builds the
//     {"url","accessToken"} answer for a hub and user from a [ConnectionString].
//   - [Verifier] checks tokens (algorithm, key, expiry, audience) and returns
//     the bearer's [Identity].
//   - [ParseConnectionString] reads "Endpoint=…;AccessKey=…;Version=1.0;".
//
// The package does no I/O and reads no environment; the gateway's HTTP layer
// calls it.
//
// Concurrency: every function is safe for concurrent use. A [Verifier] may be
// used from any number of goroutines while [Verifier.SetKeys] swaps its key
// set atomically; a Verify in flight uses either the old or the new set,
// never a mix.
//
// Token rules (mirroring Azure SignalR): HS256 only, keyed with the UTF-8
// bytes of the secret string (not base64-decoded); "exp" required, and at
// most 24 h away by default ([WithMaxLifetime]); at most 4 KiB; the user id
// is taken from "asrs.s.uid", else "nameid", else "sub", and with every
// other claim must pass package input's rules, since all of them reach
// webhooks. "aud" may be a string or a list (RFC 7519); a client token's
// aud names its hub (…/client/?hub=NAME) and binds it to exactly that hub,
// compared case-sensitively.
package negotiate
