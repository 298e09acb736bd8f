// Package upstream is the webhook contract between the gateway and the HTTP
// handlers ("upstreams") that implement a hub's logic, seen from both sides.
// docs/webhooks.md describes the wire format for authors in any language.
//
// The sending side (the gateway's dispatcher) builds an Event per client
// event, signs it with Sign (Standard Webhooks: webhook-id,
// webhook-timestamp, webhook-signature, one "v1,…" entry per active secret),
// adds CloudEvents binary-mode ce-* headers, POSTs it and decodes the answer
// with ParseReply.
//
// The receiving side is a small SDK for function authors:
//
//   - Handler(secrets, fn) is an http.Handler that answers the registration
//     OPTIONS check, verifies and decodes each webhook, calls fn and writes
//     its Reply with the status the gateway expects.
//   - EventFromRequest is the verify-and-decode step alone, for authors who
//     route requests themselves; Verify is the signature check alone.
//   - NewReply and its chained builders (Broadcast, SendToGroup, AddToGroup,
//     SetUser, …) build replies whose actions pass actions.Validate.
//   - Reject makes a connect or an invocation fail with a reason.
//
// Only the body is trusted: the signature covers the body and not the ce-*
// headers, so the body repeats the identity fields (hub, connectionId,
// userId, event) and the receiving side never reads ce-* headers.
//
// Concurrency: Handler's http.Handler is safe for concurrent use and calls fn
// concurrently, once per request, with the request's context. A Reply is a
// plain value owned by whoever builds it; its builders are not safe for
// concurrent use on the same Reply. ParseReply, Sign, Verify and
// EventFromRequest are safe for concurrent use.
package upstream
