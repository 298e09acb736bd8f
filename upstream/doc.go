// Package upstream is the webhook contract between Switchboard and the HTTP
// handlers ("upstreams") that implement a hub's logic, and the SDK function
// authors use to write them. It links nothing of the server: no breaker, no
// database, no bus, no HTTP router. docs/webhooks.md describes the wire
// format for authors in any language; the gateway's sending side is package
// delivery.
//
// # For function authors
//
//   - Handler(secrets, fn) is an http.Handler that answers the registration
//     OPTIONS check, verifies and decodes each webhook, calls fn and writes
//     its Reply with the status the gateway expects. Without a secret (not
//     registered yet) it still answers the OPTIONS check and refuses
//     webhooks with 503 ErrNoSecret.
//   - CheckSecret checks the "whsec_…" form of a secret an admin supplies.
//   - EventFromRequest is the verify-and-decode step alone, for authors who
//     route requests themselves; Verify (or Secrets.Verify) is the signature
//     check alone.
//   - NewReply and its chained builders (Broadcast, SendToGroup, AddToGroup,
//     SetUser, …) build replies whose actions pass actions.Validate.
//   - Reject makes a connect or an invocation fail with a reason.
//
// # The contract
//
// Event is the signed JSON body of every webhook and Reply what a handler
// answers; ParseReply is how the gateway reads a reply: it holds at most 100
// actions (WithMaxActions), and every name in it follows package input's
// rules (Reply.ValidateConnect for a connect reply's userId and groups,
// actions.Validate for each action). Sign and Secrets
// make the Standard Webhooks signature (webhook-id, webhook-timestamp,
// webhook-signature, one "v1,…" entry per active secret).
//
// Only the body is trusted: the signature covers the body and not the ce-*
// headers, so the body repeats the identity fields (hub, connectionId,
// userId, event) and the receiving side never reads ce-* headers.
//
// Concurrency: Handler's http.Handler is safe for concurrent use and calls fn
// concurrently, once per request, with the request's context. A Reply is a
// plain value owned by whoever builds it; its builders are not safe for
// concurrent use on the same Reply. Secrets, ParseReply, Sign, Verify and
// EventFromRequest are safe for concurrent use.
package upstream
