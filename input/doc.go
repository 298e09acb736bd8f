// Package input holds the rules for every string a client, an application's
// token or an upstream's reply can hand the gateway that may later reach a
// webhook: a header value, a URL path segment, a JSON body field, a store key,
// a NATS subject or a log line. It is the one place those rules live; each
// entry point calls the check for what it receives (docs/webhooks.md lists
// them), and code past the entry trusts the value.
//
// Every check returns nil or an *Error, which matches ErrInvalid under
// errors.Is and says in words what is wrong ("user id is 2000 bytes long; the
// limit is 1024"). Messages quote at most the start of a value, escaped, so
// they are safe to log and to return to the caller.
//
// Text, in these rules, is valid UTF-8 without control characters: no
// U+0000–U+001F, U+007F or U+0080–U+009F, the characters CloudEvents already
// forbids in attribute values.
//
// The package depends on the standard library only, so the function-author
// SDK (package upstream, through package actions) can use it. Every function
// is safe for concurrent use.
package input
